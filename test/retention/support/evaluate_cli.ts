// Standalone runner for the evaluate command (the real entry point is src/cli/main.ts once the
// command is registered there): same exit-code mapping, UsageError -> stderr + exit 2.
import { Command, CommanderError } from "commander";
import { registerEvaluate } from "../../../src/cli/commands/evaluate.js";
import { UsageError } from "../../../src/cli/exit_codes.js";

const program = new Command("ebb").exitOverride();
registerEvaluate(program);
for (const cmd of program.commands) cmd.exitOverride();
try {
  await program.parseAsync(process.argv.slice(2), { from: "user" });
} catch (err) {
  if (err instanceof CommanderError) process.exitCode = err.exitCode === 0 ? 0 : 2;
  else if (err instanceof UsageError) {
    process.stderr.write(`ebb: ${err.message}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`ebb: ${String(err)}\n`);
    process.exitCode = 1;
  }
}
