-- The catalog's server, attached through the postgres extension for the write lock.
ATTACH {catalog} AS vw_lock (TYPE postgres)
