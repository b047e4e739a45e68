// Harbor's own unit-test scenarios, reproduced black-box through ebb's evaluator.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DAY, HOUR, NOW, artifact, decide, decideMany, inRepo, kept } from "./support/catalog.js";

test("latestPushedK over push times 0..4: k=0->0, 1->1, 3->3, 5->5, 6->5, newest first", () => {
  const candidates = [0, 1, 2, 3, 4].map((t) => artifact(`sha256:${t}`, { tags: [`t${t}`], pushed: NOW - (10 - t) * HOUR }));
  for (const [k, expected] of [[0, 0], [1, 1], [3, 3], [5, 5], [6, 5]] as const) {
    const { evaluation } = decide({ rules: [{ template: "latestPushedK", params: { latestPushedK: k } }] }, candidates);
    const keptDigests = kept(evaluation.decisions);
    assert.equal(keptDigests.length, expected, `k=${k}`);
    // the newest ones are the kept ones
    assert.deepEqual(keptDigests, ["sha256:4", "sha256:3", "sha256:2", "sha256:1", "sha256:0"].slice(0, expected).sort(), `k=${k}`);
  }
});

test("nDaysSinceLastPush / nDaysSinceLastPull over 8 artifacts aged {1,2,3,4,5,10,20,30} days minus 1h", () => {
  const ages = [1, 2, 3, 4, 5, 10, 20, 30];
  const candidates = ages.map((d) => artifact(`sha256:${d}`, { tags: [`d${d}`], pushed: NOW - (d * DAY - HOUR), pulled: NOW - (d * DAY - HOUR) }));
  const table = [[0, 0], [1, 1], [2, 2], [3, 3], [4, 4], [5, 5], [15, 6], [90, 8]] as const;
  for (const template of ["nDaysSinceLastPush", "nDaysSinceLastPull"] as const) {
    for (const [n, expected] of table) {
      const { evaluation } = decide({ rules: [{ template, params: { [template]: n } } as never] }, candidates);
      assert.equal(kept(evaluation.decisions).length, expected, `${template} N=${n}`);
    }
  }
});

test("Harbor selector table over library/harbor:[latest], retention/redis:[4.0], retention/redis:[4.1], library/special (untagged)", () => {
  const catalog = [
    inRepo("library/harbor", artifact("sha256:harbor", { tags: ["latest"] })),
    inRepo("retention/redis", artifact("sha256:redis40", { tags: ["4.0"] })),
    inRepo("retention/redis", artifact("sha256:redis41", { tags: ["4.1"] })),
    inRepo("library/special", artifact("sha256:special", { tags: [] })),
  ];
  const cases: [string, string, boolean | undefined, string[]][] = [
    ["matches", "{latest,4.*}", false, ["sha256:harbor", "sha256:redis40", "sha256:redis41"]],
    ["matches", "4.*", false, ["sha256:redis40", "sha256:redis41"]],
    ["matches", "4.*", undefined, ["sha256:redis40", "sha256:redis41", "sha256:special"]],
    ["excludes", "{latest,4.*}", true, []],
    ["excludes", "{latest,4.*}", undefined, ["sha256:special"]],
    ["excludes", "4.*", true, ["sha256:harbor"]],
  ];
  for (const [decoration, pattern, untagged, expected] of cases) {
    const selector = { decoration, pattern, ...(untagged === undefined ? {} : { untagged }) } as const;
    const result = decideMany({ rules: [{ template: "always", tag_selectors: [selector as never] }] }, catalog);
    assert.deepEqual(kept(result.decisions), [...expected].sort(), `${decoration} ${pattern} untagged=${String(untagged)}`);
    // every repository was touched (rule selects all repos), so the rest is deleted
    assert.equal(result.decisions.length, 4);
  }
});

test("immutability: a protected tag on a digest protects every tag of that digest", () => {
  const candidates = [
    artifact("sha256:a", { tags: ["v1", "stable"], pushed: NOW - 30 * DAY }),
    artifact("sha256:b", { tags: ["v2"], pushed: NOW - 20 * DAY }),
    artifact("sha256:c", { tags: ["v3"], pushed: NOW - 1 * DAY }),
  ];
  for (const deletion_unit of ["artifact", "untag"] as const) {
    const { get } = decide(
      { deletion_unit, protected: [{ tag: { pattern: "stable" } }], rules: [{ template: "latestPushedK", params: { latestPushedK: 1 } }] },
      candidates,
    );
    assert.equal(get("sha256:a").action, "protected", deletion_unit);
    assert.equal(get("sha256:a").untag_tags, undefined, "v1 stays with stable");
    assert.match(get("sha256:a").reason, /stable matches protected\[0\]/);
    assert.equal(get("sha256:b").action, "delete");
    assert.equal(get("sha256:c").action, "retain");
  }
});
