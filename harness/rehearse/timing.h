/*
 * timing: the timing gates when the servers run under software emulation.
 *
 * A guest emulated without KVM runs every statement many times slower than
 * the hardware it stands for: a lock held 2 s there may be 0.2 s in
 * production, and a gate measured against it flips from one run to the
 * next. Before anything is measured, a fixed probe (a CPU-bound query, the
 * median of three runs after a warm-up) is timed on the production clone's
 * guest and on a server of this machine (the double dump test's scratch
 * server, when it is one here); gate.max_lock_ms, gate.max_stall_ms and the
 * two statement timeouts are multiplied by the ratio, and the report says
 * so (report.timing). With no server here to compare with, the lock and
 * stall gates do not gate: what they measure is still reported, with the
 * reason. The two figures are measured once for the environments and kept
 * in env.json (env->probe_ms): a later step on kept guests reuses them.
 * Nothing that does not depend on time changes: the locks taken,
 * lock order, rewrites, errors under load gate as on real hardware.
 */
#ifndef TS_TIMING_H
#define TS_TIMING_H

struct ts_run;

/* Scales run->cfg's timing gates when run->env is emulated; 0, or -1 (error set). */
int ts_run_timing(struct ts_run *run);

#endif
