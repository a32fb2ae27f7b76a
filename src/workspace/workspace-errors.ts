import { InfrastructureError } from "../errors.ts";

/**
 * A mission's repository cannot give what was asked: a commit whose bundle is
 * not in the object store, a bundle that is not what its name says, a cache
 * repository git cannot use. The message names the mission and the commit.
 */
export class WorkspaceError extends InfrastructureError {
  override readonly name: string = "WorkspaceError";
}
