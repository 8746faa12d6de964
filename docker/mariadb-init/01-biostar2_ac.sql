-- A BioStar 2 event-log database with demo logs, for compose.yaml (hrsync only ever reads it).
-- Run once by the MariaDB image on first start (an empty data volume); the logs cover the 14 local
-- days before that moment. `docker compose down -v` and up again for fresh ones.
--
-- BioStar writes one table per UTC month, t_lgYYYYMM: EVTLGUID (restarts monthly), DEVDT (UNIX
-- seconds, UTC), DEVUID (device), USRID (user id = the HRIS biostar_user_id), EVT (event code; main
-- code EVT >> 8: 0x10 verify success, 0x13 identify success, 0x11 verify failure), TNAKEY.
-- The people are the ones of docker/sqlserver-init.sql (E0001..E0020 = BioStar users 1001..1020).

CREATE DATABASE IF NOT EXISTS biostar2_ac CHARACTER SET utf8mb4;
USE biostar2_ac;
SET time_zone = '+00:00';  -- UNIX_TIMESTAMP() below reads UTC datetimes

DELIMITER //

-- One log entry at a Berlin wall-clock time, into the monthly table of its UTC month.
CREATE PROCEDURE demo_log(IN at_local DATETIME, IN user_id VARCHAR(32), IN device BIGINT, IN evt INT,
                          IN tna INT)
BEGIN
  DECLARE at_utc DATETIME DEFAULT CONVERT_TZ(at_local, 'Europe/Berlin', '+00:00');
  IF at_utc IS NULL THEN  -- the image loads the zone tables unless MARIADB_INITDB_SKIP_TZINFO is set
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no time zone tables: CONVERT_TZ(Europe/Berlin) is NULL';
  END IF;
  SET @log_table = CONCAT('t_lg', DATE_FORMAT(at_utc, '%Y%m'));
  SET @ddl = CONCAT('CREATE TABLE IF NOT EXISTS ', @log_table, ' (',
                    'EVTLGUID INT AUTO_INCREMENT PRIMARY KEY, DEVDT INT NOT NULL, DEVUID BIGINT NOT NULL, ',
                    'USRID VARCHAR(32), EVT INT NOT NULL, TNAKEY INT, KEY ix_devdt (DEVDT))');
  PREPARE create_table FROM @ddl;
  EXECUTE create_table;
  DEALLOCATE PREPARE create_table;
  SET @ins = CONCAT('INSERT INTO ', @log_table, ' (DEVDT, DEVUID, USRID, EVT, TNAKEY) VALUES (?, ?, ?, ?, ?)');
  SET @devdt = UNIX_TIMESTAMP(at_utc), @devuid = device, @usrid = user_id, @evt = evt, @tna = tna;
  PREPARE insert_log FROM @ins;
  EXECUTE insert_log USING @devdt, @devuid, @usrid, @evt, @tna;
  DEALLOCATE PREPARE insert_log;
END //

-- Weekdays 09:00-17:00 for users 1001..1020, with a few anomalies:
--   1005 forgets to punch out on Wednesdays (missing punch), 1007 is late on Mondays,
--   1009 is absent on Fridays, 1012 leaves early on Thursdays, 1003 fails a verification
--   before every punch in (never counted), and badge 9999 belongs to nobody in the HRIS.
CREATE PROCEDURE demo_logs(IN days INT)
BEGIN
  DECLARE today DATE DEFAULT DATE(CONVERT_TZ(UTC_TIMESTAMP(), '+00:00', 'Europe/Berlin'));
  DECLARE back INT DEFAULT days;
  DECLARE work_day DATE;
  DECLARE user_no INT;
  DECLARE arrive DATETIME;
  DECLARE leave_at DATETIME;
  WHILE back >= 1 DO
    SET work_day = today - INTERVAL back DAY;
    IF WEEKDAY(work_day) < 5 THEN
      SET user_no = 1001;
      WHILE user_no <= 1020 DO
        SET arrive = TIMESTAMP(work_day, '08:40:00') + INTERVAL (user_no * 7 + back * 3) MOD 18 MINUTE;
        SET leave_at = TIMESTAMP(work_day, '17:02:00') + INTERVAL (user_no * 5 + back) MOD 25 MINUTE;
        IF user_no = 1007 AND WEEKDAY(work_day) = 0 THEN
          SET arrive = TIMESTAMP(work_day, '09:47:00');
        END IF;
        IF user_no = 1012 AND WEEKDAY(work_day) = 3 THEN
          SET leave_at = TIMESTAMP(work_day, '15:20:00');
        END IF;
        IF NOT (user_no = 1009 AND WEEKDAY(work_day) = 4) THEN
          IF user_no = 1003 THEN
            CALL demo_log(arrive - INTERVAL 20 SECOND, user_no, 541530001, 4356, NULL);  -- 0x1104 failure
          END IF;
          CALL demo_log(arrive, user_no, 541530001, 4864, 1);  -- 0x1300 identify success
          IF NOT (user_no = 1005 AND WEEKDAY(work_day) = 2) THEN
            CALL demo_log(leave_at, user_no, 541530002, 4096, 2);  -- 0x1000 verify success
          END IF;
        END IF;
        SET user_no = user_no + 1;
      END WHILE;
      CALL demo_log(TIMESTAMP(work_day, '10:15:00'), '9999', 541530001, 4864, NULL);
    END IF;
    SET back = back - 1;
  END WHILE;
END //

DELIMITER ;

CALL demo_logs(14);
DROP PROCEDURE demo_logs;
DROP PROCEDURE demo_log;
