-- Group commit: a group that writes several namespaces locks them all first,
-- in sorted order, before any command takes the global usage row.

CREATE OR REPLACE FUNCTION kv_lock_namespaces(p_namespaces text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_namespace text;
BEGIN
    FOR v_namespace IN SELECT n FROM unnest(p_namespaces) AS n ORDER BY n COLLATE "C" LOOP
        PERFORM kv_lock_namespace(v_namespace);
    END LOOP;
END $$;
