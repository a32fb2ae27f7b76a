import { describe, expect, it } from "vitest";
import { ToolInputError } from "../../src/tools/tool-input-error.ts";
import { isInside, workspacePathParts } from "../../src/tools/workspace-path.ts";

describe("workspacePathParts", () => {
  it("splits a relative path into names, keeping .. for the walk", () => {
    expect(workspacePathParts("src/a.ts")).toEqual(["src", "a.ts"]);
    expect(workspacePathParts("src/../src/./a.ts")).toEqual(["src", "..", "src", "a.ts"]);
    expect(workspacePathParts("")).toEqual([]);
    expect(workspacePathParts("./")).toEqual([]);
  });

  it("refuses .. escapes, absolute paths and NUL bytes on the text alone", () => {
    expect(() => workspacePathParts("../x")).toThrow(ToolInputError);
    expect(() => workspacePathParts("../x")).toThrow("path '../x' leaves the workspace");
    expect(() => workspacePathParts("src/../../secret/key.txt")).toThrow(/leaves the workspace/);
    expect(() => workspacePathParts("/etc/passwd")).toThrow(/is absolute/);
    expect(() => workspacePathParts("a\0b")).toThrow(/NUL byte/);
  });
});

describe("isInside", () => {
  it("is not fooled by sibling prefixes or names starting with ..", () => {
    expect(isInside("/w/ws", "/w/ws")).toBe(true);
    expect(isInside("/w/ws", "/w/ws/..hidden")).toBe(true);
    expect(isInside("/w/ws", "/w/ws-2/file")).toBe(false);
    expect(isInside("/w/ws", "/w")).toBe(false);
  });
});
