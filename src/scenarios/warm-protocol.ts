// What the host and a warm guest's agent say to each other over the control
// port: one JSON line per message, each tagged with the request's id so a
// host never takes another run's lines for its own.
import type { ProofCheck } from './clean-proof.js';
import type { ScenarioResult } from './types.js';

/** virtio-serial port name of the warm guest's control channel. */
export const CONTROL_PORT = 'hm.ctl';

/** Seconds without a request after which the agent powers the guest off. */
export const IDLE_ENV = 'HYBRIDMEM_WARM_IDLE';
export const DEFAULT_IDLE_S = 900;

export interface WarmRequest {
	id: string;
	scenarios: string[];
	/** The module to load, as the guest sees it, and its hash as the host built it. */
	module: string;
	sha256: string;
}

export interface WarmReply {
	id: string;
	type: 'result' | 'done';
	result?: ScenarioResult;
	results?: ScenarioResult[];
	error?: string;
	proof?: { clean: boolean; checks: ProofCheck[] };
	guestMs?: Record<string, number>;
}
