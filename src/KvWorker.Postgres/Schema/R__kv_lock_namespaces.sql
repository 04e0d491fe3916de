-- Locks several namespaces' usage rows in sorted order. A group of commands
-- that writes several namespaces takes them all first, before any command
-- takes the global usage row, so groups cannot deadlock on it.
SELECT kv_drop_functions('kv_lock_namespaces');

CREATE FUNCTION kv_lock_namespaces(p_namespaces text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_namespace text;
BEGIN
    FOR v_namespace IN SELECT n FROM unnest(p_namespaces) AS n ORDER BY n COLLATE "C" LOOP
        PERFORM kv_lock_namespace(v_namespace);
    END LOOP;
END $$;
