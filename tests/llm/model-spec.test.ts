import { describe, expect, it } from "vitest";
import { BadInputError } from "../../src/errors.ts";
import {
  normalizeOllamaHost,
  normalizeOpenAIBaseUrl,
  resolveModelEndpoint,
} from "../../src/llm/model-endpoint.ts";
import { parseModelSpec } from "../../src/llm/model-spec.ts";

describe("parseModelSpec", () => {
  it("keeps everything after the first colon as the model", () => {
    expect(parseModelSpec("ollama:qwen2.5:7b")).toEqual({
      provider: "ollama",
      model: "qwen2.5:7b",
    });
    expect(parseModelSpec("openai:gpt-4.1")).toEqual({ provider: "openai", model: "gpt-4.1" });
    expect(parseModelSpec("openai:meta-llama/Llama-3.1-8B-Instruct")).toEqual({
      provider: "openai",
      model: "meta-llama/Llama-3.1-8B-Instruct",
    });
  });

  it.each(["qwen2.5", "anthropic:claude", "ollama:", "openai: gpt 4", ""])(
    "refuses %j with the accepted forms",
    (spec) => {
      expect(() => parseModelSpec(spec)).toThrow(BadInputError);
      expect(() => parseModelSpec(spec)).toThrow(/ollama:<model>.*openai:<model>/);
    },
  );
});

describe("model endpoints", () => {
  it("reads OLLAMA_HOST the way Ollama's CLI does", () => {
    expect(normalizeOllamaHost(undefined)).toBe("http://127.0.0.1:11434");
    expect(normalizeOllamaHost("gpu-box:11434")).toBe("http://gpu-box:11434");
    expect(normalizeOllamaHost("gpu-box")).toBe("http://gpu-box:11434");
    expect(normalizeOllamaHost(":9999")).toBe("http://127.0.0.1:9999");
    expect(normalizeOllamaHost("0.0.0.0")).toBe("http://0.0.0.0:11434");
    expect(normalizeOllamaHost("https://ollama.example.com")).toBe("https://ollama.example.com");
    expect(normalizeOllamaHost("http://10.0.0.5:8080/")).toBe("http://10.0.0.5:8080");
    expect(() => normalizeOllamaHost("ftp://x")).toThrow(BadInputError);
  });

  it("uses OPENAI_BASE_URL or the public API", () => {
    expect(normalizeOpenAIBaseUrl(undefined)).toBe("https://api.openai.com/v1");
    expect(normalizeOpenAIBaseUrl("http://127.0.0.1:8000/v1/")).toBe("http://127.0.0.1:8000/v1");
    expect(() => normalizeOpenAIBaseUrl("localhost:8000")).toThrow(BadInputError);
  });

  it("resolves a spec against a given environment", () => {
    expect(resolveModelEndpoint("ollama:qwen2.5:7b", { OLLAMA_HOST: "box:1234" })).toEqual({
      provider: "ollama",
      model: "qwen2.5:7b",
      spec: "ollama:qwen2.5:7b",
      url: "http://box:1234",
    });
    expect(resolveModelEndpoint("openai:gpt-4.1", {}).url).toBe("https://api.openai.com/v1");
  });
});
