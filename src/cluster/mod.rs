//! Several webhookd nodes on one PostgreSQL database.
