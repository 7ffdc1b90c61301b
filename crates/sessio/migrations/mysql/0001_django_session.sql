-- Django's `sessions.0001_initial` on MySQL and MariaDB, as `manage.py sqlmigrate sessions 0001`
-- prints it, with IF NOT EXISTS on the table so it also runs on a database that Django has
-- already migrated. MySQL has no CREATE INDEX IF NOT EXISTS: sessio runs a CREATE INDEX only
-- when information_schema does not list the index yet. One statement per `;` line end.
CREATE TABLE IF NOT EXISTS `django_session` (`session_key` varchar(40) NOT NULL PRIMARY KEY, `session_data` longtext NOT NULL, `expire_date` datetime(6) NOT NULL);
CREATE INDEX `django_session_expire_date_a5c62663` ON `django_session` (`expire_date`);
