import type { Task } from "../schema/index.ts";

/**
 * The one human message a model-driven task starts from: a fresh context per
 * task (persona is the system prompt; this is the work). Small models do best
 * with short, concrete instructions and an explicit "use the tools" rule.
 */
export function taskPrompt(task: Task, workspace: string): string {
  const parts = [
    `# Task ${task.id}: ${task.title}`,
    task.instructions.trim() || "(no further instructions)",
  ];
  const inputs = Object.entries(task.inputs);
  if (inputs.length) {
    parts.push(
      "## Results of the tasks this one depends on",
      ...inputs.map(([id, summary]) => `- ${id}: ${summary}`),
    );
  }
  if (task.acceptance.trim()) parts.push("## Acceptance", task.acceptance.trim());
  if (task.verify?.length) {
    parts.push(
      "## These checks run after you finish and must all exit 0",
      ...task.verify.map((c) => `- \`${c}\``),
    );
  }
  parts.push(
    "## Rules",
    [
      `- Your workspace is ${workspace}; every path you give a tool is relative to it.`,
      "- Do the work by calling the tools. Describing a change is not making it.",
      "- Check your work (run it, list or read the files) before you finish.",
      "- When done, answer with one short paragraph: what you did and where the result is.",
    ].join("\n"),
  );
  return parts.join("\n\n");
}
