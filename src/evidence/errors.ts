// Errors of the evidence layer: a Node-style ERR_* code and a message that
// says what to do.
export interface EvidenceError extends Error {
	code: string;
}

export function codedError(code: string, message: string, options?: { cause?: unknown }): EvidenceError {
	return Object.assign(new Error(message, options), { code });
}
