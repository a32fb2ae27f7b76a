/**
 * The in-process comparison for the makespan benchmark: the same DAG run by
 * a LangGraph.js StateGraph in one process, fanning out each wave's tasks
 * with `Send` (LangGraph's map step), every task making the same two model
 * calls against the same fake model server. A superstep ends when all its
 * branches have, so this is a wave barrier by construction.
 */
import { AIMessage, HumanMessage, ToolMessage, type BaseMessage } from "@langchain/core/messages";
import { Annotation, END, Send, START, StateGraph } from "@langchain/langgraph";
import { createChatModel } from "../llm/chat-model.ts";
import { callDelayMarker } from "./fake-model-server.ts";
import type { DagTask } from "./plans.ts";

const FanOut = Annotation.Root({
  wave: Annotation<number>({ reducer: (_old, next) => next, default: () => 1 }),
  done: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
});

interface TaskInput {
  task: DagTask;
}

/** Runs the DAG wave by wave; resolves with the makespan in ms and the tasks done. */
export async function runLangGraphFanOut(
  tasks: readonly DagTask[],
  opts: { modelUrl: string; callsPerTask: number },
): Promise<{ makespanMs: number; done: string[] }> {
  const model = createChatModel("ollama:bench", { env: { OLLAMA_HOST: opts.modelUrl } });
  const waves = [...new Set(tasks.map((t) => t.wave))].sort((a, b) => a - b);

  const runTask = async ({ task }: TaskInput) => {
    const prompt = new HumanMessage(
      `Task ${task.id}: list the files, then say you are done. ` +
        `(${callDelayMarker(task.lengthMs / opts.callsPerTask)})`,
    );
    // Call 1 answers with a tool call; call 2, given the tool's result, with text.
    const first = await model.invoke([prompt]);
    const call = AIMessage.isInstance(first) ? first.tool_calls?.[0] : undefined;
    const history: BaseMessage[] = [prompt, first];
    for (let i = 1; i < opts.callsPerTask; i++) {
      history.push(
        new ToolMessage({ content: "(empty workspace)", tool_call_id: call?.id ?? `call-${i}` }),
      );
      history.push(await model.invoke(history));
    }
    return { done: [task.id] };
  };

  const fanOut = (state: typeof FanOut.State) => {
    const wave = waves[state.wave - 1];
    if (wave === undefined) return END;
    return tasks.filter((t) => t.wave === wave).map((task) => new Send("run_task", { task }));
  };

  const graph = new StateGraph(FanOut)
    .addNode("run_task", runTask)
    .addNode("next_wave", (state: typeof FanOut.State) => ({ wave: state.wave + 1 }))
    .addConditionalEdges(START, fanOut, ["run_task", END])
    .addEdge("run_task", "next_wave")
    .addConditionalEdges("next_wave", fanOut, ["run_task", END])
    .compile();

  const t0 = performance.now();
  const out = await graph.invoke({ wave: 1 }, { recursionLimit: 10 + waves.length * 3 });
  const makespanMs = performance.now() - t0;
  return { makespanMs, done: out.done };
}
