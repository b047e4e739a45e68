// Seeding 1,000,000 artifacts takes ~40 s; several benchmarks need the same catalog. The first
// request for a shape seeds a template database; every benchmark then gets its own copy
// (CREATE DATABASE ... TEMPLATE, strategy file_copy: a file copy, seconds), so each still runs
// on a fresh database nobody else touched. Templates are dropped when the run ends.
import { adminQuery, copyOfTemplate, freshBenchDatabase, type BenchDatabase } from "./bench_database.js";
import type { SeededDatabase } from "./benchmark.js";
import { seedCatalog, type CatalogShape, type SeedResult } from "./seed_catalog.js";

interface Template {
  name: string;
  seed: SeedResult;
}

export class CatalogTemplates {
  private readonly templates = new Map<string, Promise<Template>>();

  constructor(private readonly log: (message: string) => void) {}

  async copy(label: string, shape: CatalogShape): Promise<SeededDatabase> {
    const key = `${shape.repositories}x${shape.artifactsPerRepository}`;
    let template = this.templates.get(key);
    if (!template) {
      template = this.create(key, shape);
      this.templates.set(key, template);
    }
    const t = await template;
    const started = performance.now();
    const db: BenchDatabase = await copyOfTemplate(t.name, label);
    this.log(`copied catalog ${key} into ${db.name} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return { ...db, seed: t.seed };
  }

  private async create(key: string, shape: CatalogShape): Promise<Template> {
    const db = await freshBenchDatabase(`tpl_${key}`);
    try {
      this.log(`seeding ${shape.repositories} repositories x ${shape.artifactsPerRepository} artifacts by SQL ...`);
      const seed = await seedCatalog(db.pool, shape);
      this.log(
        `seeded ${seed.artifacts} artifacts, ${seed.tags} tags, ${seed.references} referrers in ${seed.seconds.toFixed(1)} s`,
      );
      await db.pool.end();
      return { name: db.name, seed };
    } catch (err) {
      await db.drop();
      throw err;
    }
  }

  async dropAll(): Promise<void> {
    for (const t of this.templates.values()) {
      const resolved = await t.catch(() => undefined);
      if (resolved) await adminQuery(`drop database if exists ${resolved.name} with (force)`).catch(() => {});
    }
    this.templates.clear();
  }
}
