import { Option, type Command } from "commander";
import { SETTINGS, type ConfigInput } from "../config/schema.js";

/** Add one flag per setting (names and help from SETTINGS), so flags and env stay in step. */
export function addConfigOptions(cmd: Command, keys: (keyof ConfigInput)[]): Command {
  for (const key of keys) {
    const s = SETTINGS[key];
    cmd.addOption(new Option(s.flag, `${s.doc} [env ${s.env}]`));
  }
  return cmd;
}

/** The flags the user actually gave (commander leaves others undefined). */
export function configFlags(opts: Record<string, unknown>): Partial<Record<keyof ConfigInput, unknown>> {
  const flags: Partial<Record<keyof ConfigInput, unknown>> = {};
  for (const key of Object.keys(SETTINGS) as (keyof ConfigInput)[]) {
    // `--no-migrate` gives migrate=false; its implied default true must not override env.
    const negated = SETTINGS[key].flag.startsWith("--no-");
    if (opts[key] !== undefined && !(negated && opts[key] === true)) flags[key] = opts[key];
  }
  return flags;
}
