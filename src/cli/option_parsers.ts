// Parsers for command-line values. They throw commander's InvalidArgumentError, so commander
// names the option or argument in its message and main() exits with 2.
import { InvalidArgumentError } from "commander";

export function wholeNumber(min: number, max: number): (value: string) => number {
  return (value: string) => {
    if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`must be a whole number between ${min} and ${max}.`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`must be between ${min} and ${max}.`);
    return n;
  };
}

/** An execution (or other row) id: a positive whole number. */
export const rowId = (value: string): number => {
  if (!/^[1-9]\d{0,15}$/.test(value.trim()) || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError("must be an execution id (a positive whole number).");
  }
  return Number(value);
};

export function oneOf<T extends string>(choices: readonly T[]): (value: string) => T {
  return (value: string) => {
    if (!(choices as readonly string[]).includes(value)) throw new InvalidArgumentError(`must be one of ${choices.join(", ")}.`);
    return value as T;
  };
}
