/** A group without callback verification. */
export const NO_CALLBACK = { callbackURL: '', oauthURL: '', oauthClientID: '', oauthClientSecret: '' };
