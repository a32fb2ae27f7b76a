/** The attempts a replica runs now, each with the way to abort it. */
export class InFlightTasks {
  private readonly running = new Map<
    string,
    { mission: string; abort: (reason: string) => void }
  >();

  add(key: string, mission: string, abort: (reason: string) => void): void {
    this.running.set(key, { mission, abort });
  }

  delete(key: string): void {
    this.running.delete(key);
  }

  get size(): number {
    return this.running.size;
  }

  abortMission(missionId: string, reason: string): void {
    for (const r of this.running.values()) if (r.mission === missionId) r.abort(reason);
  }

  abortAll(reason: string): void {
    for (const r of this.running.values()) r.abort(reason);
  }
}
