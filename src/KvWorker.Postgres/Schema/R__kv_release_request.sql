-- Forgets the claim of a request that was rejected, so that a retry is judged afresh.
SELECT kv_drop_functions('kv_release_request');

CREATE FUNCTION kv_release_request(p_request_id text) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM kv_processed_requests WHERE request_id = p_request_id;
$$;
