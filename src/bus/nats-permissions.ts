/**
 * What each role of a swarm may publish and subscribe to on NATS (pure): the
 * permissions of the `nkey:` users in the generated authorization block
 * (src/bus/nats-auth-block.ts). Subjects are those @nats-io/jetstream and
 * @nats-io/kv 3.4 use on nats-server 2.9+: consumers are created through the
 * named API (`CONSUMER.CREATE.<stream>.<name>[.<filter>]`), a KV read is a
 * direct get (`DIRECT.GET.KV_<bucket>.$KV.<bucket>.<key>`), a KV write a
 * publish on `$KV.<bucket>.<key>`, a bucket is opened with
 * `STREAM.INFO.KV_<bucket>`; git bundles (`squad_bundles`) are read and
 * written as READ_BUNDLES / WRITE_BUNDLES say. docs/security.md has the table.
 *
 * Only the orchestrator may create, change or delete streams, durable
 * consumers and buckets. Readers (watcher, operator) may create the ephemeral
 * ordered consumers that replay SQUAD_EVENTS and SQUAD_STATUS (the named API
 * cannot tell an ephemeral from a durable, so they are limited to those
 * streams, which no work queue shares). Each role but the orchestrator has
 * its own inbox prefix, so none can read another's replies.
 */
import { STREAMS, subjects, workerDurable } from "../schema/subjects.ts";
import type { Role } from "./identity.ts";

/** The bucket names (leases.ts and identity-registry.ts own them; kept here to stay a pure module). */
const CLAIMS = "squad_claims";
const IDENTITIES_BUCKET = "squad_identities";
/** The git bundles' object store (bundle-bucket.ts) and the stream under it. */
const BUNDLES = "squad_bundles";
const BUNDLES_STREAM = `OBJ_${BUNDLES}`;
/** The mission view (src/schema/mission-view.ts): written by the orchestrator only. */
const MISSION_VIEW = "squad_mission_view";

export interface SubjectPermissions {
  publish: string[];
  subscribe: string[];
}

export interface RoleIdentity {
  role: Role;
  agent?: string;
}

/**
 * The inbox prefix a role's client must use (`inboxPrefix` of the NATS
 * client; SWARM_NATS_INBOX_PREFIX), or undefined for the default `_INBOX`
 * (the orchestrator). Upper case for the non-worker roles: agent names are
 * lower case, so `_INBOX_WATCHER` can't be an agent's.
 */
export function inboxPrefixFor(id: RoleIdentity): string | undefined {
  switch (id.role) {
    case "orchestrator":
      return undefined;
    case "worker":
      return `_INBOX_${id.agent}`;
    case "operator":
      return "_INBOX_OPERATOR";
    case "watcher":
      return "_INBOX_WATCHER";
  }
}

/** Reading the key registry (every role: signatures are checked against it). */
const READ_IDENTITIES = [
  `$JS.API.STREAM.INFO.KV_${IDENTITIES_BUCKET}`,
  `$JS.API.DIRECT.GET.KV_${IDENTITIES_BUCKET}.>`,
  `$JS.API.STREAM.MSG.GET.KV_${IDENTITIES_BUCKET}`,
  // A KV watch or keys() is an ordered push consumer with flow control.
  `$JS.API.CONSUMER.CREATE.KV_${IDENTITIES_BUCKET}`,
  `$JS.API.CONSUMER.CREATE.KV_${IDENTITIES_BUCKET}.>`,
  `$JS.API.CONSUMER.INFO.KV_${IDENTITIES_BUCKET}.*`,
  `$JS.API.CONSUMER.DELETE.KV_${IDENTITIES_BUCKET}.*`,
  `$JS.FC.KV_${IDENTITIES_BUCKET}.>`,
];

/**
 * Reading git bundles: the bucket is opened with STREAM.INFO, an object's
 * metadata and its chunks read with STREAM.MSG.GET (last, then next by
 * subject: src/bus/object-read.ts). The consumer subjects let a stock
 * @nats-io/obj client read too (its get() is an ordered push consumer with
 * flow control). Direct get is allowed too (the stream has allow_direct).
 */
const READ_BUNDLES = [
  `$JS.API.STREAM.INFO.${BUNDLES_STREAM}`,
  `$JS.API.STREAM.MSG.GET.${BUNDLES_STREAM}`,
  `$JS.API.DIRECT.GET.${BUNDLES_STREAM}`,
  `$JS.API.DIRECT.GET.${BUNDLES_STREAM}.>`,
  `$JS.API.CONSUMER.CREATE.${BUNDLES_STREAM}`,
  `$JS.API.CONSUMER.CREATE.${BUNDLES_STREAM}.>`,
  `$JS.API.CONSUMER.INFO.${BUNDLES_STREAM}.*`,
  `$JS.API.CONSUMER.DELETE.${BUNDLES_STREAM}.*`,
  `$JS.FC.${BUNDLES_STREAM}.>`,
];

/**
 * Writing one: chunks on `$O.<bucket>.C.<nuid>`, then the metadata on
 * `$O.<bucket>.M.<name>`. Not STREAM.PURGE (it could empty the whole
 * bucket): the client's clean-up of a put that failed half-way is then
 * refused, and the stray chunks age out with the bucket's max_age.
 */
const WRITE_BUNDLES = [`$O.${BUNDLES}.C.>`, `$O.${BUNDLES}.M.>`];

/** `swarm watch`, `swarm status`, `swarm audit`: replays and stream facts, nothing that changes state. */
const READ_SWARM = [
  "$JS.API.INFO",
  "$JS.API.STREAM.INFO.*",
  "$JS.API.STREAM.NAMES",
  "$JS.API.STREAM.LIST",
  "$JS.API.CONSUMER.INFO.>",
  "$JS.API.CONSUMER.LIST.*",
  "$JS.API.CONSUMER.NAMES.*",
  ...[STREAMS.events, STREAMS.status].flatMap((s) => [
    `$JS.API.CONSUMER.CREATE.${s}`,
    `$JS.API.CONSUMER.CREATE.${s}.>`,
    `$JS.API.CONSUMER.MSG.NEXT.${s}.>`,
    // An ordered consumer deletes itself when it resets or stops. These two streams hold no
    // durable: a reader deleting another's ephemeral consumer only makes that one re-create it.
    `$JS.API.CONSUMER.DELETE.${s}.*`,
  ]),
  // A submitted brief, for `swarm status` (the mission's title).
  `$JS.API.STREAM.MSG.GET.${STREAMS.missions}`,
  // The mission view, key by key (direct get, or the stream's message get): never a write,
  // which would be a publish on `$KV.squad_mission_view.<key>`.
  `$JS.API.DIRECT.GET.KV_${MISSION_VIEW}.>`,
  `$JS.API.STREAM.MSG.GET.KV_${MISSION_VIEW}`,
];

/** The subjects `id` may publish and subscribe to (pure). */
export function rolePermissions(id: RoleIdentity): SubjectPermissions {
  switch (id.role) {
    case "orchestrator":
      return {
        // Admin of the swarm: every squad subject, the whole JetStream API (streams, consumers,
        // buckets, object stores), acks and flow control, and replies to its requests.
        publish: ["squad.>", "$JS.>", "$KV.>", "$O.>", "_INBOX.>"],
        subscribe: ["squad.>", "_INBOX.>", "$JS.EVENT.>"],
      };
    case "worker": {
      const agent = id.agent;
      if (!agent) throw new Error("a worker identity names its agent");
      const durable = workerDurable(agent);
      return {
        publish: [
          subjects.coordination,
          `squad.status.${agent}.*`,
          subjects.dlq(agent),
          "$JS.API.INFO",
          "$JS.API.STREAM.INFO.*",
          `$JS.API.CONSUMER.INFO.${STREAMS.tasks}.${durable}`,
          `$JS.API.CONSUMER.MSG.NEXT.${STREAMS.tasks}.${durable}`,
          `$JS.ACK.${STREAMS.tasks}.${durable}.>`,
          // Claims of its own agent's attempts only: `<agent>.<mission>.<task>.<attempt>`.
          `$KV.${CLAIMS}.${agent}.>`,
          `$JS.API.DIRECT.GET.KV_${CLAIMS}.$KV.${CLAIMS}.${agent}.>`,
          ...READ_IDENTITIES,
          // The missions' git bundles: the bases it checks out, the commits it makes.
          ...READ_BUNDLES,
          ...WRITE_BUNDLES,
        ],
        subscribe: [`${inboxPrefixFor(id)}.>`, subjects.coordination],
      };
    }
    case "operator":
      return {
        // A person: submit and cancel missions, decide approvals; and everything a watcher reads.
        publish: [
          subjects.missionsSubmit,
          subjects.coordination,
          ...READ_SWARM,
          ...READ_IDENTITIES,
          // A submission uploads its workspace's base; delivery fetches the mission's head.
          ...READ_BUNDLES,
          ...WRITE_BUNDLES,
        ],
        subscribe: ["squad.>", `${inboxPrefixFor(id)}.>`],
      };
    case "watcher":
      return {
        publish: [...READ_SWARM, ...READ_IDENTITIES, ...READ_BUNDLES],
        subscribe: ["squad.>", `${inboxPrefixFor(id)}.>`],
      };
  }
}
