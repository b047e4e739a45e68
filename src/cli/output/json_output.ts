// --json output: one JSON document on stdout, dates as ISO 8601 strings, ending in a newline.
export function renderJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

export async function writeOut(text: string, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  if (!out.write(text)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
}
