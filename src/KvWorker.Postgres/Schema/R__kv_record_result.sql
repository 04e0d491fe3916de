-- Records the parts of a mutation's answer that depend on the state it met,
-- for its replays: the new value of an increment, 'true'/'false' for a delete.
SELECT kv_drop_functions('kv_record_result');

CREATE FUNCTION kv_record_result(p_request_id text, p_result text, p_ttl_seconds double precision) RETURNS void
LANGUAGE sql AS $$
    UPDATE kv_processed_requests SET result = p_result, ttl_seconds = p_ttl_seconds WHERE request_id = p_request_id;
$$;
