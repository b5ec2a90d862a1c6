// workerd's reports of faults the tests inject on purpose, which scripts/test.mjs leaves out of the
// output: the Stream emulator's dropped connections (it throws DroppedConnectionError so that workerd
// rejects the caller's fetch, and workerd reports each as an uncaught exception with two stacks) and its
// webhooks to the tests' made-up hosts ("DNS lookup failed … hook.test"). Everything else passes, and
// a failing test's report never matches these patterns.
const INJECTED = [/DroppedConnectionError/, /Connection dropped by emulator fault/, /DNS lookup failed\.; params\.host = (hook|coordinator)\.test/];
/** The lines that continue such a report: JS frames, and workerd's symbol-less address stacks. */
const CONTINUATION = [/^\s+at /, /^\s*stack:( \S+@[0-9a-f]+)+(;.*)?\s*$/];
/** workerd's opaque report of an internal error; whether it is injected shows on the next line. */
const OPAQUE = /^uncaught exception; .*Error: internal error; reference = \w+\s*$/;

const plain = (line) => line.replace(/\x1b\[[0-9;]*m/g, "");

export class InjectedFaultFilter {
  /**
   * @param {(line: string) => void} write
   * @param {Set<string>} references shared by the filters of one process's stdout and stderr: workerd
   *   names an internal error on stderr (`wdErrId`) and reports it on stdout
   */
  constructor(write, references = new Set()) {
    this.write = write;
    this.dropping = false;
    this.dropped = 0;
    this.held = null;
    /** workerd's references of dropped internal errors: it reports each one twice. */
    this.references = references;
  }

  push(line) {
    const text = plain(line);
    const reference = /reference = (\w+)/.exec(text)?.[1];
    if (INJECTED.some((pattern) => pattern.test(text)) || (reference && this.references.has(reference))) {
      const heldReference = this.held && /reference = (\w+)/.exec(plain(this.held))?.[1];
      if (heldReference) this.references.add(heldReference);
      this.held = null;
      this.dropping = true;
      this.dropped += 1;
      return;
    }
    if (this.dropping && CONTINUATION.some((pattern) => pattern.test(text))) {
      // workerd names the internal error it will report for this fault (`wdErrId`), lines later: that
      // report (twice, opaque: "internal error; reference = <id>") goes too.
      const later = /wdErrId = (\w+)/.exec(text)?.[1];
      if (later) this.references.add(later);
      return;
    }
    this.dropping = false;
    if (this.held !== null) this.write(this.held);
    this.held = OPAQUE.test(text) ? line : null;
    if (this.held === null) this.write(line);
  }

  end() {
    if (this.held !== null) this.write(this.held);
    if (this.dropped > 0) this.write(`(${this.dropped} reports of injected faults left out: scripts/quiet-faults.mjs)`);
  }
}
