import assert from "node:assert/strict";
import { test } from "node:test";
import { freshDatabase } from "../support/db.js";
import {
  OCI_INDEX, artifacts, blobEvent, deleteEvent, digestOf, envelope, pullEvent, pushEvent, seedRegistry, startEventsServer, tags,
} from "./support/events_server.js";

const T0 = Date.parse("2025-03-01T10:00:00Z");
const at = (minutes: number) => new Date(T0 + minutes * 60_000);

test("push, pull and delete envelopes keep the catalog true", async (t) => {
  const db = await freshDatabase(t);
  await seedRegistry(db.pool);
  await seedRegistry(db.pool, "other");
  const server = await startEventsServer(t, db.pool, db.url);
  const A = digestOf("A"), B = digestOf("B"), C = digestOf("C"), IDX = digestOf("IDX"), K1 = digestOf("K1"), K2 = digestOf("K2");
  const ok = async (body: object, registry?: string) => {
    const res = await server.post(body, { registry });
    assert.equal(res.status, 200, await res.clone().text());
    return res.json();
  };

  await t.test("a push by tag creates the repository, the artifact (pushed_at = event time) and the tag; blob events are ignored", async () => {
    const body = await ok(envelope(
      blobEvent("push", { repo: "team/app", digest: digestOf("layer"), at: at(0) }),
      blobEvent("mount", { repo: "team/app", digest: digestOf("layer2"), at: at(0) }),
      pushEvent({ repo: "team/app", digest: A, tag: "v1", at: at(1), size: 512 }),
      pushEvent({ repo: "team/app", digest: B, at: at(2) }),
    ));
    assert.deepEqual(body, { accepted: 2, ignored: 2 });
    const rows = await artifacts(db.pool);
    assert.deepEqual(rows.map((r) => [r.repository, r.digest, r.size, r.pushed_at.toISOString(), r.pushed_at_source, r.pulled_at]), [
      ["team/app", A, 512, at(1).toISOString(), "event", null],
      ["team/app", B, 400, at(2).toISOString(), "event", null],
    ].sort((x, y) => String(x[1]).localeCompare(String(y[1]))));
    assert.deepEqual((await tags(db.pool)).map((r) => [r.name, r.digest, r.pushed_at?.toISOString()]), [["v1", A, at(1).toISOString()]]);
  });

  await t.test("an index push records its children as index_child references", async () => {
    await ok(envelope(
      pushEvent({ repo: "team/app", digest: K1, at: at(3) }),
      pushEvent({ repo: "team/app", digest: K2, at: at(3) }),
      pushEvent({ repo: "team/app", digest: IDX, tag: "multi", at: at(4), mediaType: OCI_INDEX, references: [
        { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: K1, size: 400 },
        { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: K2, size: 400 },
      ] }),
    ));
    const refs = await db.pool.query("select digest, kind, ref_digest from ebb.artifact_references order by ref_digest");
    assert.deepEqual(refs.rows, [K1, K2].sort().map((k) => ({ digest: IDX, kind: "index_child", ref_digest: k })));
    const stale = await db.pool.query("select stale from ebb.repositories where name = 'team/app'");
    assert.equal(stale.rows[0].stale, false);
  });

  await t.test("an index push without references marks the repository STALE (retention must wait for a sync)", async () => {
    await ok(envelope(pushEvent({ repo: "team/multi", digest: digestOf("IDX2"), tag: "x", at: at(4), mediaType: OCI_INDEX })));
    const r = await db.pool.query("select stale, stale_reason from ebb.repositories where name = 'team/multi'");
    assert.equal(r.rows[0].stale, true);
    assert.match(r.rows[0].stale_reason, /includereferences/);
  });

  await t.test("pulls move pulled_at of the artifact, and of the tag when pulled by tag", async () => {
    await ok(envelope(
      pullEvent({ repo: "team/app", digest: A, tag: "v1", at: at(10) }),
      pullEvent({ repo: "team/app", digest: B, at: at(11), method: "HEAD" }),
    ));
    assert.equal((await artifacts(db.pool)).find((r) => r.digest === A)!.pulled_at, null, "buffered until the flush");
    assert.equal(await server.ingest.flush(), true);
    const rows = await artifacts(db.pool);
    assert.equal(rows.find((r) => r.digest === A)!.pulled_at?.toISOString(), at(10).toISOString());
    assert.equal(rows.find((r) => r.digest === B)!.pulled_at?.toISOString(), at(11).toISOString());
    assert.equal(rows.find((r) => r.digest === K1)!.pulled_at, null, "not pulled");
    assert.equal((await tags(db.pool)).find((r) => r.name === "v1")!.pulled_at?.toISOString(), at(10).toISOString());

    // An older pull (a late or replayed event) never moves pulled_at back.
    await ok(envelope(pullEvent({ repo: "team/app", digest: A, tag: "v1", at: at(5) })));
    await server.ingest.flush();
    assert.equal((await artifacts(db.pool)).find((r) => r.digest === A)!.pulled_at?.toISOString(), at(10).toISOString());
  });

  await t.test("pulls of the same repository name in another registry touch nothing here", async () => {
    await ok(envelope(pullEvent({ repo: "team/app", digest: B, at: at(50) })), "other");
    await server.ingest.flush();
    assert.equal((await artifacts(db.pool)).find((r) => r.digest === B)!.pulled_at?.toISOString(), at(11).toISOString());
  });

  await t.test("moving a tag points it at the new digest and resets its pulled_at; an older push does not move it back", async () => {
    await ok(envelope(pushEvent({ repo: "team/app", digest: C, tag: "v1", at: at(20) })));
    let v1 = (await tags(db.pool)).find((r) => r.name === "v1")!;
    assert.equal(v1.digest, C);
    assert.equal(v1.pulled_at, null);
    assert.equal(v1.pushed_at?.toISOString(), at(20).toISOString());
    await ok(envelope(pushEvent({ repo: "team/app", digest: A, tag: "v1", at: at(15) })));
    v1 = (await tags(db.pool)).find((r) => r.name === "v1")!;
    assert.equal(v1.digest, C, "a late push event does not move the tag back");
    // Pushing A again (by tag or by digest) does not make A a newer artifact: its push stays the first.
    assert.equal((await artifacts(db.pool)).find((r) => r.digest === A)!.pushed_at.toISOString(), at(1).toISOString());
    await ok(envelope(pushEvent({ repo: "team/app", digest: A, at: at(12) })));
    assert.equal((await artifacts(db.pool)).find((r) => r.digest === A)!.pushed_at.toISOString(), at(1).toISOString());
  });

  await t.test("a re-tag records the tag's push, not a new push of the artifact; an earlier event moves the artifact's push back", async () => {
    const R = digestOf("R");
    const row = async () => (await artifacts(db.pool)).find((r) => r.repository === "team/retag" && r.digest === R)!;
    const tag = async () => (await tags(db.pool)).find((r) => r.repository === "team/retag" && r.name === "release-1")!;
    await ok(envelope(pushEvent({ repo: "team/retag", digest: R, tag: "build-1", at: at(2) })));
    await ok(envelope(pushEvent({ repo: "team/retag", digest: R, tag: "release-1", at: at(25) })));
    assert.equal((await row()).pushed_at.toISOString(), at(2).toISOString(), "the build's push is unchanged");
    assert.equal((await tag()).pushed_at?.toISOString(), at(25).toISOString());
    // pushing the same tag onto the same digest again: that tag's last push
    await ok(envelope(pushEvent({ repo: "team/retag", digest: R, tag: "release-1", at: at(26) })));
    assert.equal((await tag()).pushed_at?.toISOString(), at(26).toISOString());
    // a late event of an earlier push (e.g. after a sync had first seen it later)
    await db.pool.query("update ebb.artifacts set pushed_at = $1, pushed_at_source = 'sync' where digest = $2", [at(8), R]);
    await ok(envelope(pushEvent({ repo: "team/retag", digest: R, at: at(3) })));
    const moved = await row();
    assert.deepEqual([moved.pushed_at.toISOString(), moved.pushed_at_source], [at(3).toISOString(), "event"]);
    await ok(envelope(deleteEvent({ repo: "team/retag", digest: R, at: at(27) })));
  });

  await t.test("delete by tag removes only the tag; delete by digest removes the artifact and its tags; everything else survives", async () => {
    await ok(envelope(pushEvent({ repo: "team/app", digest: C, tag: "latest", at: at(21) })));
    await ok(envelope(pushEvent({ repo: "team/other", digest: C, tag: "v1", at: at(21) })));
    await ok(envelope(deleteEvent({ repo: "team/app", tag: "latest", at: at(30) })));
    assert.deepEqual((await tags(db.pool)).map((r) => `${r.repository}:${r.name}`), ["team/app:multi", "team/app:v1", "team/multi:x", "team/other:v1"]);
    assert.ok((await artifacts(db.pool)).some((r) => r.repository === "team/app" && r.digest === C), "the artifact of a deleted tag stays");

    // What docker-registry sends for DELETE /v2/team/app/manifests/<C>: the digest, then each tag.
    await ok(envelope(deleteEvent({ repo: "team/app", digest: C, at: at(31) }), deleteEvent({ repo: "team/app", tag: "v1", at: at(31) })));
    const rows = await artifacts(db.pool);
    assert.ok(!rows.some((r) => r.repository === "team/app" && r.digest === C), "deleted artifact is gone");
    assert.ok(rows.some((r) => r.repository === "team/other" && r.digest === C), "same digest in another repository survives");
    assert.deepEqual(rows.filter((r) => r.repository === "team/app").map((r) => r.digest).sort(), [A, B, IDX, K1, K2].sort());
    assert.deepEqual((await tags(db.pool)).map((r) => `${r.repository}:${r.name}`), ["team/app:multi", "team/multi:x", "team/other:v1"]);

    // Deleting the index removes its references, not its children.
    await ok(envelope(deleteEvent({ repo: "team/app", digest: IDX, at: at(32) })));
    assert.equal((await db.pool.query("select count(*)::int as n from ebb.artifact_references")).rows[0].n, 0);
    assert.deepEqual((await artifacts(db.pool)).filter((r) => r.repository === "team/app").map((r) => r.digest).sort(), [A, B, K1, K2].sort());

    // Deleting what the catalog does not hold is a no-op, not an error (the registry resends on errors).
    await ok(envelope(deleteEvent({ repo: "team/nothing", digest: digestOf("nope"), at: at(33) })));
  });

  await t.test("a digest deleted and pushed again is a new push", async () => {
    const D = digestOf("D");
    await ok(envelope(pushEvent({ repo: "team/again", digest: D, tag: "v1", at: at(33) })));
    await ok(envelope(deleteEvent({ repo: "team/again", digest: D, at: at(34) }), deleteEvent({ repo: "team/again", tag: "v1", at: at(34) })));
    await ok(envelope(pushEvent({ repo: "team/again", digest: D, tag: "v1", at: at(35) })));
    const d = (await artifacts(db.pool)).find((r) => r.repository === "team/again" && r.digest === D)!;
    assert.equal(d.pushed_at.toISOString(), at(35).toISOString());
  });

  await t.test("a push to a repository marked deleted brings it back", async () => {
    await db.pool.query("update ebb.repositories set deleted_at = now() where name = 'team/other'");
    await ok(envelope(pushEvent({ repo: "team/other", digest: A, at: at(40) })));
    const r = await db.pool.query("select deleted_at from ebb.repositories where name = 'team/other'");
    assert.equal(r.rows[0].deleted_at, null);
  });
});

test("pulls by configured user agents (scanners) do not count as use", async (t) => {
  const db = await freshDatabase(t);
  await seedRegistry(db.pool);
  const server = await startEventsServer(t, db.pool, db.url, { eventsIgnoreUserAgents: "Trivy, clair" });
  const A = digestOf("A");
  await server.post(envelope(pushEvent({ repo: "team/app", digest: A, tag: "v1", at: at(0) })));
  const res = await server.post(envelope(
    pullEvent({ repo: "team/app", digest: A, tag: "v1", at: at(5), ua: "trivy/0.50.1" }),
    pullEvent({ repo: "team/app", digest: A, at: at(6), ua: "Clair/4.7 (scanner)" }),
  ));
  assert.deepEqual(await res.json(), { accepted: 0, ignored: 2 });
  await server.ingest.flush();
  assert.equal((await artifacts(db.pool))[0]!.pulled_at, null);
  await server.post(envelope(pullEvent({ repo: "team/app", digest: A, tag: "v1", at: at(7), ua: "containerd/1.7.2" })));
  await server.ingest.flush();
  assert.equal((await artifacts(db.pool))[0]!.pulled_at?.toISOString(), at(7).toISOString());
  assert.equal(server.ingest.counters.eventsIgnored.user_agent, 2);
});
