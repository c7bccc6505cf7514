/**
 * A machine's current snapshot, stepped by xstate's pure `transition`: what
 * an actor does for machines like the TCP connection's and the socket's,
 * whose only actions assign context and whose guards read only context (no
 * effects, no children, no delays), without an actor per socket. An actor
 * cost about 3.5 KiB of heap, and every TCP socket end had two.
 *
 * For such a machine the next snapshot is a function of the snapshot and
 * the event, and snapshots are immutable: each step is computed once per
 * machine (a `transition` costs about 30 µs, an actor's send 8) and then
 * shared by every cell, so a cell holds one reference and a step is two map
 * lookups.
 */
import { initialTransition, transition, type AnyStateMachine, type EventFromLogic, type SnapshotFrom } from 'xstate';

interface MachineSteps {
  /** One snapshot object per distinct state (value, context, status). */
  readonly canonical: Map<string, unknown>;
  /** From each canonical snapshot, where each event (by its content) leads. */
  readonly next: Map<unknown, Map<string, unknown>>;
  initial?: unknown;
}

const STEPS = new WeakMap<AnyStateMachine, MachineSteps>();

function stepsOf(machine: AnyStateMachine): MachineSteps {
  let steps = STEPS.get(machine);
  if (!steps) STEPS.set(machine, (steps = { canonical: new Map(), next: new Map() }));
  return steps;
}

function canonical(steps: MachineSteps, snapshot: { value: unknown; context: unknown; status: unknown }): unknown {
  const key = JSON.stringify([snapshot.value, snapshot.context, snapshot.status]);
  let known = steps.canonical.get(key);
  if (known === undefined) steps.canonical.set(key, (known = snapshot));
  return known;
}

export class MachineCell<TMachine extends AnyStateMachine> {
  private readonly steps: MachineSteps;
  private snapshot: SnapshotFrom<TMachine>;

  /** At the machine's initial state, or at `snapshot` (`machine.resolveState(...)`). */
  constructor(
    private readonly machine: TMachine,
    snapshot?: SnapshotFrom<TMachine>,
  ) {
    const steps = (this.steps = stepsOf(machine));
    if (snapshot) this.snapshot = canonical(steps, snapshot) as SnapshotFrom<TMachine>;
    else this.snapshot = (steps.initial ??= canonical(steps, initialTransition(machine as AnyStateMachine, undefined)[0])) as SnapshotFrom<TMachine>;
  }

  /** Takes the event's transition, if the current state has one (an event it has none for changes nothing). */
  send(event: EventFromLogic<TMachine>): void {
    let byEvent = this.steps.next.get(this.snapshot);
    if (!byEvent) this.steps.next.set(this.snapshot, (byEvent = new Map()));
    // Most events are their type alone; one with more (an error) is keyed by all of it.
    const key = Object.keys(event).length === 1 ? (event.type as string) : JSON.stringify(event);
    let next = byEvent.get(key);
    if (next === undefined) byEvent.set(key, (next = canonical(this.steps, transition(this.machine, this.snapshot, event)[0])));
    this.snapshot = next as SnapshotFrom<TMachine>;
  }

  getSnapshot(): SnapshotFrom<TMachine> {
    return this.snapshot;
  }
}
