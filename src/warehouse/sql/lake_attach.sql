-- {catalog}: 'ducklake:postgres:<connection string>'; {data_path}: the data path (both as
-- SQL literals made by lake::sql_literal from the configuration).
ATTACH {catalog} AS lake (DATA_PATH {data_path});
USE lake;
