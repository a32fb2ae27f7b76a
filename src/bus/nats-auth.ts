/**
 * How a client proves who it is to NATS: the methods NATS users have (a
 * creds file of operator/JWT mode, an nkey seed file, a token, a user and
 * password) and TLS, read from the environment (`NATS_CREDS`, `NATS_NKEY`,
 * `NATS_TOKEN`, `NATS_USER`/`NATS_PASS` or `user:pass@` in the URL;
 * `NATS_CA`, `NATS_CERT`, `NATS_KEY`) and turned into the client's
 * authenticators. Secrets stay in files or in this process: a description of
 * the method names the file or the user, never the secret.
 */
import { readFile } from "node:fs/promises";
import {
  credsAuthenticator,
  nkeyAuthenticator,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
  type Authenticator,
  type TlsOptions,
} from "@nats-io/transport-node";
import { BadInputError, InfrastructureError, errorMessage } from "../errors.ts";
import { readSeedFile } from "./identity-store.ts";

export type NatsAuth =
  | { method: "creds"; file: string }
  | { method: "nkey"; seedFile: string }
  | { method: "token"; token: string }
  | { method: "user"; user: string; pass?: string };

export interface NatsTls {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

/** What the environment says about credentials and TLS (only the NATS_* variables). */
export interface NatsAuthEnv {
  NATS_CREDS?: string | undefined;
  NATS_NKEY?: string | undefined;
  NATS_TOKEN?: string | undefined;
  NATS_USER?: string | undefined;
  NATS_PASS?: string | undefined;
  NATS_CA?: string | undefined;
  NATS_CERT?: string | undefined;
  NATS_KEY?: string | undefined;
}

/**
 * The one credential the environment gives, or undefined (pure). Two at once
 * (say NATS_NKEY and NATS_TOKEN) are ambiguous: a BadInputError.
 */
export function authFromEnv(env: NatsAuthEnv): NatsAuth | undefined {
  const given: NatsAuth[] = [];
  const v = (s: string | undefined) => (s?.trim() ? s.trim() : undefined);
  const creds = v(env.NATS_CREDS);
  const nkey = v(env.NATS_NKEY);
  const token = v(env.NATS_TOKEN);
  const user = v(env.NATS_USER);
  if (creds) given.push({ method: "creds", file: creds });
  if (nkey) given.push({ method: "nkey", seedFile: nkey });
  if (token) given.push({ method: "token", token });
  if (user) given.push({ method: "user", user, ...(env.NATS_PASS ? { pass: env.NATS_PASS } : {}) });
  if (given.length > 1) {
    throw new BadInputError(
      `more than one NATS credential is set (${given.map(envNameOf).join(", ")}): set exactly one`,
    );
  }
  return given[0];
}

/** TLS settings of the environment, or undefined when none is set (pure). */
export function tlsFromEnv(env: NatsAuthEnv): NatsTls | undefined {
  const tls: NatsTls = {
    ...(env.NATS_CA?.trim() ? { caFile: env.NATS_CA.trim() } : {}),
    ...(env.NATS_CERT?.trim() ? { certFile: env.NATS_CERT.trim() } : {}),
    ...(env.NATS_KEY?.trim() ? { keyFile: env.NATS_KEY.trim() } : {}),
  };
  if (Object.keys(tls).length === 0) return undefined;
  if (Boolean(tls.certFile) !== Boolean(tls.keyFile)) {
    throw new BadInputError("NATS_CERT and NATS_KEY go together: set both or neither");
  }
  return tls;
}

function envNameOf(a: NatsAuth): string {
  switch (a.method) {
    case "creds":
      return "NATS_CREDS";
    case "nkey":
      return "NATS_NKEY";
    case "token":
      return "NATS_TOKEN";
    case "user":
      return "NATS_USER";
  }
}

/** The method in words, for messages and logs: names files and users, never a secret (pure). */
export function describeAuth(auth: NatsAuth | undefined, tls?: NatsTls): string {
  let what: string;
  if (!auth) what = "no credentials";
  else {
    switch (auth.method) {
      case "creds":
        what = `creds file ${auth.file}`;
        break;
      case "nkey":
        what = `nkey seed file ${auth.seedFile}`;
        break;
      case "token":
        what = "a token (NATS_TOKEN)";
        break;
      case "user":
        what = `user ${JSON.stringify(auth.user)}${auth.pass !== undefined ? " with a password" : ""}`;
        break;
    }
  }
  if (tls) {
    const parts = [
      tls.caFile ? `CA ${tls.caFile}` : null,
      tls.certFile ? `client certificate ${tls.certFile}` : null,
    ].filter(Boolean);
    what += `, TLS${parts.length ? ` (${parts.join(", ")})` : ""}`;
  }
  return what;
}

/** The shipped placeholders of nats.conf / .env.example (`change-me-builder`, ...). */
const PLACEHOLDER = /^change-?me/i;

/**
 * Refuse the shipped placeholder passwords (and tokens): a swarm running with
 * them is open to anyone who read the repository.
 */
export function refusePlaceholder(auth: NatsAuth | undefined): void {
  const secret =
    auth?.method === "user" ? auth.pass : auth?.method === "token" ? auth.token : undefined;
  if (secret === undefined || !PLACEHOLDER.test(secret)) return;
  throw new BadInputError(
    `the NATS ${auth?.method === "token" ? "token" : "password"} is the shipped placeholder ` +
      "(change-me-...), which anyone who has read the repository knows: generate real credentials " +
      "(`swarm nats-config --generate --roster FILE` writes an nkey per role and the server's " +
      "authorization block; see docs/operations.md), or set strong passwords in .env",
  );
}

/** The client's authenticator for `auth` (reads the files it names). */
export async function authenticatorFor(auth: NatsAuth): Promise<Authenticator> {
  switch (auth.method) {
    case "creds": {
      let bytes: Uint8Array;
      try {
        bytes = await readFile(auth.file);
      } catch (err) {
        throw new InfrastructureError(
          `cannot read the NATS creds file ${auth.file}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`,
          "NATS_CREDS names a .creds file (a user JWT and its seed, as `nsc` writes it)",
        );
      }
      if (!/-----BEGIN NATS USER JWT-----/.test(new TextDecoder().decode(bytes))) {
        throw new BadInputError(
          `the NATS creds file ${auth.file} holds no user JWT (-----BEGIN NATS USER JWT-----)`,
        );
      }
      return credsAuthenticator(bytes);
    }
    case "nkey":
      return nkeyAuthenticator((await readSeedFile(auth.seedFile)).seed);
    case "token":
      return tokenAuthenticator(auth.token);
    case "user":
      return usernamePasswordAuthenticator(auth.user, auth.pass);
  }
}

/** The client's TLS options (the files are read by the client when it connects). */
export function tlsOptionsFor(tls: NatsTls): TlsOptions {
  return { ...tls };
}
