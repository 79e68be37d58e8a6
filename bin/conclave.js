#!/usr/bin/env -S node --max-semi-space-size=1
// The flag: a member's young generation never needs V8's default 16 MiB semi-spaces (its
// garbage is small and short-lived); capping them keeps about 10 MiB of RSS per member.
import '../dist/src/cli/main.js'
