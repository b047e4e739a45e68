import { configSchema } from "../../src/config/schema.js";

/**
 * ebb's configuration defaults (src/config/schema.ts): the benchmarks run ebb, and its peers
 * where they have the same knob (pool size, concurrency), with these, so a changed default is
 * measured as users get it.
 */
export const EBB_DEFAULTS = configSchema.parse({});
