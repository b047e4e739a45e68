// "ns/name/sub" -> project "ns", path "name/sub" (Harbor: repository selectors see the path
// without the project). A one-segment name "alpine" -> project "", path "alpine".

export interface RepositoryName {
  project: string;
  path: string;
}

export function splitRepository(repository: string): RepositoryName {
  const slash = repository.indexOf("/");
  if (slash < 0) return { project: "", path: repository };
  return { project: repository.slice(0, slash), path: repository.slice(slash + 1) };
}
