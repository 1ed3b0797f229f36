-- Client tokens are looked up by their hash on every client request.
CREATE INDEX clients_by_token_hash ON clients (token_hash);
