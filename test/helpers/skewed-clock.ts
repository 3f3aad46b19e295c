/**
 * Preloaded into a relay process (`NODE_OPTIONS=--import <this file>`) to give it a wall clock
 * that is off by KUBERELAY_TEST_CLOCK_SKEW_MS, like a pod on a node whose clock drifted. Only
 * Date.now moves: timers and performance.now keep running normally, as they do on such a node.
 */
const skew = Number(process.env.KUBERELAY_TEST_CLOCK_SKEW_MS ?? 0);
const realNow = Date.now.bind(Date);
Date.now = () => realNow() + skew;
