-- A content digest per message identity: a message delivered again under a stored
-- (gateway, seq) is a resend when its digest matches, a conflicting duplicate when it
-- does not (dead-lettered with both digests). NULL for messages stored before this.
ALTER TABLE messages ADD COLUMN digest bigint;
