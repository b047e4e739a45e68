// The churn soak's simulated CI fleet: one pusher (a push every 1-3 s across the repositories,
// busy ones more often) and pullers, talking to the registry directly (never through ebb's
// proxy). Every manifest pushed and every tag assigned is recorded with the times of its PUT,
// so the invariants can be checked against what the fleet did, not against ebb's tables.
import { setTimeout as sleep } from "node:timers/promises";
import {
  OCI_EMPTY, OCI_MANIFEST, pullManifest, pushBlob, pushImage, pushIndex, pushManifest, pushReferrer,
  type RegistryTarget,
} from "../../test/support/oci_push.js";

export type ArtifactKind = "image" | "index" | "child" | "signature" | "referrer";

export interface TagAssignment {
  tag: string;
  /** ms since epoch: the PUT started / the registry answered 201 */
  startedAt: number;
  ackAt: number;
  /** true for a tag added to a digest pushed earlier (release-N / keep-N) */
  retag: boolean;
}

export interface TrackedArtifact {
  repo: string;
  digest: string;
  kind: ArtifactKind;
  mediaType: string;
  bytes: Buffer;
  /** the first PUT of this digest: started / answered */
  firstStartedAt: number;
  firstPushedAt: number;
  tags: TagAssignment[];
  /** index: its platform manifests */
  children: string[];
  /** child: its index; referrer and signature: its subject */
  parent?: string;
}

export interface FleetOptions {
  registry: RegistryTarget;
  /** in-scope repositories; the first `busy` of them get three times the pushes */
  repositories: string[];
  busy: number;
  /** a repository outside the policy's scope: pushed to and pulled from, never to be touched */
  outOfScope: string;
  seedImages: number;
  pullers: number;
  rand: () => number;
  log(message: string): void;
}

export interface FleetCounts {
  pushes: number;
  manifests: number;
  retags: number;
  retagSkippedGone: number;
  pulls: number;
  pulls404: number;
  errors: string[];
}

export class Fleet {
  /** `${repo}@${digest}` -> artifact */
  readonly artifacts = new Map<string, TrackedArtifact>();
  readonly counts: FleetCounts = { pushes: 0, manifests: 0, retags: 0, retagSkippedGone: 0, pulls: 0, pulls404: 0, errors: [] };
  private stopping = false;
  private loops: Promise<void>[] = [];
  private buildNo = new Map<string, number>();
  private retagNo = 0;

  constructor(private readonly o: FleetOptions) {}

  byRepo(repo: string): TrackedArtifact[] {
    return [...this.artifacts.values()].filter((a) => a.repo === repo);
  }

  private nextBuild(repo: string): number {
    const n = (this.buildNo.get(repo) ?? 0) + 1;
    this.buildNo.set(repo, n);
    return n;
  }

  private record(repo: string, digest: string, kind: ArtifactKind, mediaType: string, bytes: Buffer,
    startedAt: number, ackAt: number, tag: string | undefined, extra: Partial<TrackedArtifact> = {}): TrackedArtifact {
    const key = `${repo}@${digest}`;
    let a = this.artifacts.get(key);
    if (!a) {
      a = { repo, digest, kind, mediaType, bytes, firstStartedAt: startedAt, firstPushedAt: ackAt, tags: [], children: [], ...extra };
      this.artifacts.set(key, a);
      this.counts.manifests++;
    }
    if (tag !== undefined) a.tags.push({ tag, startedAt, ackAt, retag: false });
    return a;
  }

  async pushBuild(repo: string): Promise<TrackedArtifact> {
    const tag = `build-${this.nextBuild(repo)}`;
    const t0 = Date.now();
    const img = await pushImage(this.o.registry, repo, { tag });
    return this.record(repo, img.digest, "image", img.mediaType, img.bytes, t0, Date.now(), tag);
  }

  async pushMultiArch(repo: string): Promise<TrackedArtifact> {
    const tag = `build-${this.nextBuild(repo)}`;
    const t0 = Date.now();
    const idx = await pushIndex(this.o.registry, repo, { tag });
    const t1 = Date.now();
    for (const c of idx.children) this.record(repo, c.digest, "child", c.mediaType, c.bytes, t0, t1, undefined, { parent: idx.digest });
    return this.record(repo, idx.digest, "index", idx.mediaType, idx.bytes, t0, t1, tag, { children: idx.children.map((c) => c.digest) });
  }

  /** cosign's tag scheme: a separate manifest tagged sha256-<hex of the signed digest>.sig, no `subject` */
  async pushCosignSignature(repo: string, signed: TrackedArtifact): Promise<TrackedArtifact> {
    const tag = `${signed.digest.replace(":", "-")}.sig`;
    const t0 = Date.now();
    const config = await pushBlob(this.o.registry, repo, Buffer.from("{}"), OCI_EMPTY);
    const payload = await pushBlob(this.o.registry, repo, Buffer.from(`{"critical":{"image":{"docker-manifest-digest":"${signed.digest}"}},"n":${Math.random()}}`),
      "application/vnd.dev.cosign.simplesigning.v1+json");
    const m = await pushManifest(this.o.registry, repo, tag, { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [payload] }, OCI_MANIFEST);
    return this.record(repo, m.digest, "signature", m.mediaType, m.bytes, t0, Date.now(), tag, { parent: signed.digest });
  }

  /** an OCI referrer (untagged, `subject` = the build) */
  async pushSubjectReferrer(repo: string, subject: TrackedArtifact): Promise<TrackedArtifact> {
    const t0 = Date.now();
    const r = await pushReferrer(this.o.registry, repo, { mediaType: subject.mediaType, digest: subject.digest, size: subject.bytes.byteLength });
    return this.record(repo, r.digest, "referrer", r.mediaType, r.bytes, t0, Date.now(), undefined, { parent: subject.digest });
  }

  /**
   * Add a release-N or keep-N tag to an older build still in the registry (PUT of its manifest
   * bytes under the new tag). A digest deleted between the HEAD and the PUT comes back (the
   * registry keeps the blobs): the invariants see that from the DELETE log.
   */
  async retag(repo: string): Promise<TagAssignment | undefined> {
    const builds = this.byRepo(repo).filter((a) => a.kind === "image" || a.kind === "index")
      .sort((a, b) => b.firstPushedAt - a.firstPushedAt);
    const old = builds.slice(3);
    if (old.length === 0) return undefined;
    for (let attempt = 0; attempt < 4; attempt++) {
      const pick = old[Math.floor(this.o.rand() * old.length)]!;
      const head = await fetch(`${this.o.registry.url}/v2/${repo}/manifests/${pick.digest}`, { method: "HEAD", headers: { accept: pick.mediaType } });
      await head.arrayBuffer();
      if (head.status !== 200) {
        this.counts.retagSkippedGone++;
        continue;
      }
      const tag = `${this.o.rand() < 0.5 ? "release" : "keep"}-${++this.retagNo}`;
      const t0 = Date.now();
      await pushManifest(this.o.registry, repo, tag, pick.bytes, pick.mediaType);
      const assignment: TagAssignment = { tag, startedAt: t0, ackAt: Date.now(), retag: true };
      pick.tags.push(assignment);
      this.counts.retags++;
      return assignment;
    }
    return undefined;
  }

  private pickRepo(): string {
    const weights = this.o.repositories.map((_, i) => (i < this.o.busy ? 3 : 1));
    let r = this.o.rand() * weights.reduce((a, b) => a + b, 0);
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i]!;
      if (r < 0) return this.o.repositories[i]!;
    }
    return this.o.repositories[this.o.repositories.length - 1]!;
  }

  /** Pushes before the soak: every repository starts with `seedImages` builds (repositories in parallel, each in order). */
  async seed(): Promise<void> {
    await Promise.all([...this.o.repositories, this.o.outOfScope].map(async (repo) => {
      for (let i = 0; i < this.o.seedImages; i++) {
        const b = await this.pushBuild(repo);
        if (i % 3 === 1) await this.pushCosignSignature(repo, b);
        this.counts.pushes++;
      }
    }));
  }

  private async pushOne(): Promise<void> {
    const x = this.o.rand();
    if (x < 0.05) {
      await this.pushBuild(this.o.outOfScope);
      this.counts.pushes++;
      return;
    }
    const repo = this.pickRepo();
    if (x < 0.25) {
      await this.retag(repo);
      return;
    }
    if (x < 0.4) {
      await this.pushMultiArch(repo);
    } else {
      const b = await this.pushBuild(repo);
      const y = this.o.rand();
      if (y < 0.25) await this.pushCosignSignature(repo, b);
      else if (y < 0.45) await this.pushSubjectReferrer(repo, b);
    }
    this.counts.pushes++;
  }

  private async pusherLoop(): Promise<void> {
    while (!this.stopping) {
      // a push starts every 1-3 s, however long the previous one took
      const next = Date.now() + 1000 + this.o.rand() * 2000;
      try {
        await this.pushOne();
      } catch (err) {
        this.counts.errors.push(`push: ${(err as Error).message}`);
      }
      await sleep(Math.max(0, next - Date.now()));
    }
  }

  private async pullerLoop(): Promise<void> {
    while (!this.stopping) {
      // mostly what users pull: the newest builds and the releases; sometimes any tag ever pushed
      let tagged = [...this.artifacts.values()].filter((a) => a.tags.length > 0);
      if (this.o.rand() < 0.8) {
        const repos = [...this.o.repositories, this.o.outOfScope];
        const repo = repos[Math.floor(this.o.rand() * repos.length)]!;
        const mine = tagged.filter((a) => a.repo === repo).sort((a, b) => b.firstPushedAt - a.firstPushedAt);
        tagged = [...mine.slice(0, 5), ...mine.filter((a) => a.tags.some((t) => t.retag))];
      }
      if (tagged.length) {
        const a = tagged[Math.floor(this.o.rand() * tagged.length)]!;
        const t = a.tags[Math.floor(this.o.rand() * a.tags.length)]!;
        try {
          const got = await pullManifest(this.o.registry, a.repo, t.tag);
          this.counts.pulls++;
          if (got.status === 404) this.counts.pulls404++;
        } catch (err) {
          this.counts.errors.push(`pull: ${(err as Error).message}`);
        }
      }
      await sleep(300 + this.o.rand() * 700);
    }
  }

  start(): void {
    this.loops.push(this.pusherLoop());
    for (let i = 0; i < this.o.pullers; i++) this.loops.push(this.pullerLoop());
  }

  /** Stop after the actions in flight: every PUT the fleet started is recorded. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }
}
