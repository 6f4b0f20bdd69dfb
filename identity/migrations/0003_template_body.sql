-- What a template's sealed plaintext holds. 1: the float32 embedding. 2: the float32 embedding
-- followed by the enrolment walk's body measures as float32 [shoulder, hip] metres (NaN where
-- the walk was not measured). Older rows stay 1; the format is read per row.
ALTER TABLE identity.templates ADD COLUMN payload smallint NOT NULL DEFAULT 1;
