import { test } from "node:test";
import assert from "node:assert/strict";
import { redraw } from "./progress.js";

/** Applies the bytes to a tiny screen model: cursor up, clear line, clear to end, newlines. */
function screenAfter(frames: string[]): string[] {
  const screen: string[] = [];
  let row = 0;
  for (const bytes of frames) {
    const re = /\x1b\[(\d*)([AJK])|\x1b\[2K|\n|[^\x1b\n]+/g;
    for (const m of bytes.matchAll(re)) {
      const tok = m[0];
      if (tok === "\n") row++;
      else if (tok === "\x1b[2K") screen[row] = "";
      else if (m[2] === "A") row -= Number(m[1] || 1);
      else if (m[2] === "J") screen.length = row;
      else screen[row] = (screen[row] ?? "") + tok;
    }
  }
  return screen.filter((l) => l !== undefined);
}

// issue #7: the progress view did not clear its extra lines when a scale shrank mid-wait.
test("a shorter redraw leaves no stale lines below it", () => {
  const five = ["overall progress: 5 out of 5 tasks", "1/5: running", "2/5: running", "3/5: running", "4/5: running"];
  const two = ["overall progress: 2 out of 2 tasks", "1/2: running", "2/2: running"];
  assert.deepEqual(screenAfter([redraw(0, five), redraw(five.length, two)]), two);
  assert.deepEqual(screenAfter([redraw(0, two), redraw(two.length, five)]), five);
});
