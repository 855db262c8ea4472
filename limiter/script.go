package limiter

import _ "embed" // for Script

// Script is gcra.lua: CL.THROTTLE as a Redis Lua script, with the semantics
// of Throttle, for EVAL/EVALSHA with one key and the arguments max_burst,
// count, period and an optional quantity. It is what plain Redis users run,
// and the baseline of Sluice's benchmarks.
//
//go:embed gcra.lua
var Script string
