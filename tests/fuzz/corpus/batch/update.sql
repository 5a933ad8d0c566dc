UPDATE accounts SET email_norm = lower(email) WHERE email_norm IS NULL;
