// The names the docs' snippets use without defining them: what the reader's own code holds.

/** The signed-in user's JWT, from the product's identity provider. */
declare const jwt: string;
/** The product's account id of the customer being metered. */
declare const accountId: string;
/** An idempotency key stable across retries of one job (for example the product request's id). */
declare const jobId: string;
