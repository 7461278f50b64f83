-------------------------------------------------------------------------------
-- src/sql/extension_schema.sql: the extension's schema belongs to a
-- superuser.  The first statement of every script from 1.3 on (the
-- Makefile puts it first).
--
-- The C functions write the catalog tables as superuser, naming them
-- sales_kafka.pipeline and so on.  A role that may create schemas could
-- make schema sales_kafka before CREATE EXTENSION, which then installs into
-- it; the schema's owner could later rename it and put a schema of its
-- own, with a trigger on its own "pipeline" table, in its place.  So the
-- extension refuses to be installed, or updated, in a schema a superuser
-- does not own, or whose name is no longer sales_kafka; the C side checks
-- the same before each catalog statement (src/extension_schema.c).  First,
-- before the script touches anything in the schema: the error rolls the
-- whole CREATE or ALTER EXTENSION back.
-------------------------------------------------------------------------------

DO $$
DECLARE
    nsp pg_catalog.name;
    owner pg_catalog.name;
    is_super boolean;
BEGIN
    SELECT n.nspname, r.rolname, r.rolsuper INTO nsp, owner, is_super
      FROM pg_catalog.pg_extension e
      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
      JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
     WHERE e.extname OPERATOR(pg_catalog.=) 'sales_kafka';
    IF nsp OPERATOR(pg_catalog.<>) 'sales_kafka' THEN
        RAISE EXCEPTION 'schema "sales_kafka" is not the schema of extension "sales_kafka"'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = pg_catalog.format('The extension''s schema was renamed to "%s".', nsp),
                  HINT = pg_catalog.format('As a superuser, rename schema "%s" back to "sales_kafka" (after renaming or dropping any other schema of that name) and try again.', nsp);
    END IF;
    IF NOT is_super THEN
        RAISE EXCEPTION 'schema "sales_kafka" is not owned by a superuser'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = pg_catalog.format('Role "%s" owns it, and could change the objects that the extension uses as a superuser.', owner),
                  HINT = 'As a superuser, check what the schema holds, then run ALTER SCHEMA sales_kafka OWNER TO CURRENT_USER (or drop the schema) and try again.';
    END IF;
END
$$;
