-- Queues an event in the outbox, in the transaction of the change it reports.
SELECT kv_drop_functions('kv_enqueue_event');

CREATE FUNCTION kv_enqueue_event(p_event_type text, p_payload json) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO kv_outbox (event_type, payload) VALUES (p_event_type, p_payload::text);
$$;
