// Stands in for a userscript that cannot reach the page's MAIN world: it serves its
// methods through anyLane (the postMessage lane) only. Runs in the page's MAIN world here
// (a test page cannot create a sandboxed world), but leaves globalThis.__any__ alone.
let laneRuns = 0;
anyLane.serve({
  // Counts its runs: each call through the lane must run it once.
  laneCount: async () => ++laneRuns,
  laneEcho: async (params) => ({
    echo: params,
    servedBy: "lane",
    onMainWorldApi: typeof globalThis.__any__ === "object" && globalThis.__any__ !== null,
  }),
  laneThrows: async () => {
    throw new SyntaxError("thrown on the lane");
  },
  laneReturnsFunction: async () => ({ list: [() => 1] }),
});
