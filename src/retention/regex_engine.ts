// Backtracking safety for every pattern ebb matches (globs and user regexes).
//
// V8's default engine (irregexp) backtracks: a pattern like ^(a+)+b$ takes exponential
// time on "aaaa...a!". V8 also ships a linear-time (automaton) engine. With the flag
// --enable-experimental-regexp-engine-on-excessive-backtracks, irregexp runs as usual
// and, once a single match exceeds a backtrack budget, V8 re-runs that match on the
// linear engine. Normal patterns keep irregexp speed; catastrophic ones become linear.
// The flag is process-wide and can be set at runtime (verified on Node 20); we set it
// when this module is first imported. `linearEngineAvailable` reports whether V8
// accepted the flags (witness: the "l" regexp flag compiles), so callers can log it.
//
// The linear engine cannot run backreferences or lookarounds, so ebb refuses those in
// user regexes (see regex_guard.ts); the structural guard there is a second layer.
import v8 from "node:v8";

function enableLinearFallback(): boolean {
  try {
    v8.setFlagsFromString("--enable-experimental-regexp-engine-on-excessive-backtracks");
    v8.setFlagsFromString("--enable-experimental-regexp-engine");
    new RegExp("a", "l");
    return true;
  } catch {
    return false;
  }
}

export const linearEngineAvailable: boolean = enableLinearFallback();
