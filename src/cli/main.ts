import { Command, CommanderError } from "commander";
import { ConfigError } from "../config/load.js";
import { MigrationError } from "../db/migrate.js";
import { registerEvaluate } from "./commands/evaluate.js";
import { registerMigrate } from "./commands/migrate.js";
import { registerPolicy } from "./commands/policy.js";
import { registerOperatorCommands } from "./operator_commands.js";
import { registerStart } from "./commands/start.js";
import { EXIT, UsageError } from "./exit_codes.js";

export function buildProgram(): Command {
  const program = new Command("ebb")
    .description("Postgres-native scheduler and retention engine for container registries")
    .showHelpAfterError()
    .exitOverride();
  registerMigrate(program);
  registerStart(program);
  registerEvaluate(program);
  registerPolicy(program);
  registerOperatorCommands(program);
  for (const cmd of program.commands) cmd.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end through here with exitCode 0.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof ConfigError || err instanceof UsageError) {
      process.stderr.write(`ebb: ${err.message}\n`);
      return EXIT.usage;
    }
    if (err instanceof MigrationError) {
      process.stderr.write(`ebb: ${err.message}\n`);
      return EXIT.failure;
    }
    process.stderr.write(`ebb: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    return EXIT.failure;
  }
}
