import { describe, expect, it } from "vitest";
import { splitCredentials } from "../../src/bus/index.ts";

describe("splitCredentials", () => {
  it("takes user and password out of the URL so they never reach logs", () => {
    expect(splitCredentials("nats://orchestrator:s%40cret@nats:4222")).toEqual({
      servers: ["nats://nats:4222"],
      user: "orchestrator",
      pass: "s@cret",
    });
  });

  it("leaves URLs without credentials alone and splits comma lists", () => {
    expect(splitCredentials("nats://a:4222, nats://b:4222")).toEqual({
      servers: ["nats://a:4222", "nats://b:4222"],
    });
    expect(splitCredentials(["127.0.0.1:4222"])).toEqual({ servers: ["127.0.0.1:4222"] });
  });
});
