/** The JetStream bus: what the orchestrator, the workers and the CLI call. */
export {
  connectBus,
  natsAnswers,
  natsServerInfo,
  natsHostPort,
  splitCredentials,
  type ConnectBusOptions,
  type NatsConnection,
  type NatsServerHello,
} from "./connect.ts";
export {
  authFromEnv,
  tlsFromEnv,
  describeAuth,
  refusePlaceholder,
  type NatsAuth,
  type NatsTls,
} from "./nats-auth.ts";
export {
  provisionStreams,
  replicasFromEnv,
  squadStreamConfigs,
  tasksStreamConfig,
  eventsStreamConfig,
  statusStreamConfig,
  missionsStreamConfig,
  dlqStreamConfig,
  diffStreamConfig,
  StreamConfigConflictError,
  DEFAULT_EVENTS_MAX_AGE_S,
  DEFAULT_DUPLICATE_WINDOW_S,
  type StreamOptions,
  type SquadStreamSpec,
  type ProvisionResult,
  type FieldChange,
} from "./streams.ts";
export {
  ensureWorkerConsumer,
  ensureMissionsConsumer,
  workerConsumerConfig,
  missionsConsumerConfig,
  MISSIONS_DURABLE,
  WORKER_CONSUMER_DEFAULTS,
  type WorkerConsumerOptions,
} from "./consumers.ts";
export {
  createPublisher,
  subjectFor,
  SQUAD_TYPE_HEADER,
  SQUAD_MISSION_HEADER,
  type Publisher,
  type PublisherOptions,
  type PublishOptions,
  type PublishResult,
} from "./publisher.ts";
export {
  buildDlqRecord,
  dlqMsgId,
  publishDeadLetter,
  type DeadLetterInput,
} from "./dead-letter.ts";
export {
  createTaskPuller,
  type TaskDelivery,
  type TaskHandler,
  type TaskPuller,
  type TaskPullerOptions,
} from "./task-puller.ts";
export {
  watchEvents,
  replayEvents,
  type WatchOptions,
  type EventWatch,
  type ReplayOptions,
  type ReplayedEvent,
} from "./watcher.ts";
export {
  openLeaseStore,
  LeaseLostError,
  LeaseValue,
  CLAIMS_BUCKET,
  MISSIONS_BUCKET,
  claimKey,
  type LeaseStore,
  type AcquireResult,
} from "./leases.ts";
export { openJetStreamManager } from "./jetstream-manager.ts";
export {
  openMissionViewStore,
  readMissionView,
  readMissionSummary,
  MissionViewVersionError,
  type MissionViewStore,
  type MissionViewReading,
  type Versioned,
} from "./mission-view-store.ts";
export { hasJsCode, jsApiCode, JS_CODES } from "./jetstream-codes.ts";
export { isTransientNatsError, retryTransient, type RetryPolicy } from "./retry.ts";
export { followEvents, type EventFeed, type EventFeedOptions } from "./event-feed.ts";
export {
  countPerAgent,
  readSwarmSnapshot,
  readWorkerConsumers,
  type SwarmSnapshot,
  type WorkerConsumerStats,
  type SnapshotOptions,
} from "./swarm-status.ts";
export {
  openEventGuard,
  openModeGuard,
  type Admission,
  type EventGuard,
  type EventGuardOptions,
  type ReceivedMessage,
} from "./event-guard.ts";
export {
  authorize,
  approverOf,
  type AuthorityContext,
  type AuthorityVerdict,
} from "./event-authority.ts";
export {
  checkSignature,
  createEventSigner,
  publicKeyOfSeed,
  signedBytes,
  EVENT_SIGNATURE_CONTEXT,
  type EventSigner,
} from "./event-signing.ts";
export {
  IDENTITIES_BUCKET,
  IdentityRegistry,
  openIdentityRegistry,
  publishIdentities,
  readIdentityRegistryFile,
  readSeedFile,
} from "./identity-registry.ts";
