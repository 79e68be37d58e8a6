#!/usr/bin/env -S node --max-semi-space-size=4 --no-memory-reducer
// The flags (see src/member-flags.ts): a member's young generation needs 4 MiB semi-spaces,
// not V8's default 16 MiB, and V8's memory reducer would run full collections every few seconds
// of an idle member to shrink a heap that does not grow.
import '../dist/src/cli/main.js'
