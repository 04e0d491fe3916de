-- Books a change of bytes and entries on a namespace whose usage row the
-- caller has locked, and on the global counter when it is maintained.
SELECT kv_drop_functions('kv_add_usage');

CREATE FUNCTION kv_add_usage(p_namespace text, p_bytes bigint, p_entries bigint, p_maintain_global boolean)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_maintain_global THEN
        UPDATE kv_global_usage
           SET used_bytes = used_bytes + p_bytes, entry_count = entry_count + p_entries;
    END IF;
    UPDATE kv_namespace_usage
       SET used_bytes = used_bytes + p_bytes, entry_count = entry_count + p_entries
     WHERE namespace = p_namespace;
END $$;
