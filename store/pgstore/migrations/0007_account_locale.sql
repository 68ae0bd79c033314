-- The language and time zone of the messages an account's owner gets
-- (SPEC §5a): locale is zh-CN or en, time_zone an IANA name. Rows from
-- before get the defaults.
ALTER TABLE accounts ADD COLUMN locale text NOT NULL DEFAULT 'zh-CN';
ALTER TABLE accounts ADD COLUMN time_zone text NOT NULL DEFAULT 'Asia/Shanghai';
