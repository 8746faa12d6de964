-- The demo HRIS on SQL Server, for compose.yaml: database hris, a table of people, the view hrsync
-- reads (DESIGN §6: hrsync_employees) and a read-only login. Idempotent: the one-shot service
-- sqlserver-init runs it at every `docker compose up` (sqlcmd -b stops at the first error).
-- $(HRIS_PASSWORD) is a sqlcmd variable, read from the environment variable of that name.
-- The people match docker/mariadb-init/01-biostar2_ac.sql: E0001..E0020 = BioStar users 1001..1020.

IF DB_ID(N'hris') IS NULL CREATE DATABASE hris;
GO
USE hris;
GO
IF OBJECT_ID(N'dbo.people', N'U') IS NULL
CREATE TABLE dbo.people (
    employee_no      NVARCHAR(16)  NOT NULL PRIMARY KEY,
    full_name        NVARCHAR(200) NOT NULL,
    email            NVARCHAR(254) NULL,
    department       NVARCHAR(100) NULL,
    manager_no       NVARCHAR(16)  NULL,
    status           NVARCHAR(16)  NOT NULL DEFAULT N'active',
    hire_date        DATE          NULL,
    termination_date DATE          NULL,
    biostar_user_id  NVARCHAR(32)  NULL,
    updated_at       DATETIME2(3)  NOT NULL DEFAULT SYSUTCDATETIME()  -- UTC: hrsync reads naive times as UTC
);
GO
-- What hrsync reads (HRSYNC_HRIS_QUERY's default): the columns of DESIGN §6, nothing else.
CREATE OR ALTER VIEW dbo.hrsync_employees AS
SELECT employee_no, full_name, email, department, manager_no, status, hire_date, termination_date,
       biostar_user_id, updated_at
FROM dbo.people;
GO
IF NOT EXISTS (SELECT 1 FROM dbo.people)
INSERT INTO dbo.people (employee_no, full_name, email, department, manager_no, status, hire_date,
                        termination_date, biostar_user_id)
VALUES
    (N'E0001', N'Anna Adler',      N'anna.adler@example.com',      N'Management', NULL,    N'active', '2014-02-01', NULL, N'1001'),
    (N'E0002', N'Ben Becker',      N'ben.becker@example.com',      N'Operations', N'E0001', N'active', '2016-05-01', NULL, N'1002'),
    (N'E0003', N'Clara Celik',     N'clara.celik@example.com',     N'Operations', N'E0002', N'active', '2018-09-15', NULL, N'1003'),
    (N'E0004', N'David Dietrich',  N'david.dietrich@example.com',  N'Operations', N'E0002', N'active', '2019-01-07', NULL, N'1004'),
    (N'E0005', N'Elif Engel',      N'elif.engel@example.com',      N'Operations', N'E0002', N'active', '2020-03-02', NULL, N'1005'),
    (N'E0006', N'Felix Fischer',   N'felix.fischer@example.com',   N'Operations', N'E0002', N'active', '2021-06-01', NULL, N'1006'),
    (N'E0007', N'Greta Graf',      N'greta.graf@example.com',      N'Operations', N'E0002', N'active', '2021-10-01', NULL, N'1007'),
    (N'E0008', N'Hannes Hoffmann', N'hannes.hoffmann@example.com', N'Operations', N'E0002', N'active', '2022-02-14', NULL, N'1008'),
    (N'E0009', N'Ida Ivanova',     N'ida.ivanova@example.com',     N'Operations', N'E0002', N'active', '2022-08-01', NULL, N'1009'),
    (N'E0010', N'Jonas Jung',      N'jonas.jung@example.com',      N'Operations', N'E0002', N'active', '2023-01-09', NULL, N'1010'),
    (N'E0011', N'Kira Keller',     N'kira.keller@example.com',     N'Sales',      N'E0001', N'active', '2015-11-01', NULL, N'1011'),
    (N'E0012', N'Lukas Lang',      N'lukas.lang@example.com',      N'Sales',      N'E0011', N'active', '2017-04-03', NULL, N'1012'),
    (N'E0013', N'Mia Meyer',       N'mia.meyer@example.com',       N'Sales',      N'E0011', N'active', '2018-07-16', NULL, N'1013'),
    (N'E0014', N'Noah Neumann',    N'noah.neumann@example.com',    N'Sales',      N'E0011', N'active', '2019-10-01', NULL, N'1014'),
    (N'E0015', N'Olga Otto',       N'olga.otto@example.com',       N'Sales',      N'E0011', N'active', '2020-01-13', NULL, N'1015'),
    (N'E0016', N'Paul Peters',     N'paul.peters@example.com',     N'Sales',      N'E0011', N'active', '2021-03-01', NULL, N'1016'),
    (N'E0017', N'Rosa Richter',    N'rosa.richter@example.com',    N'Sales',      N'E0011', N'active', '2022-05-02', NULL, N'1017'),
    (N'E0018', N'Samir Schmidt',   NULL,                           N'Sales',      N'E0011', N'active', '2023-04-03', NULL, N'1018'),
    (N'E0019', N'Tara Thomas',     N'tara.thomas@example.com',     N'Sales',      N'E0011', N'active', '2023-09-01', NULL, N'1019'),
    (N'E0020', N'Umut Ulrich',     N'umut.ulrich@example.com',     N'Sales',      N'E0011', N'active', '2024-02-01', NULL, N'1020');
GO
-- hrsync reads the view and nothing else.
IF SUSER_ID(N'hrsync_reader') IS NULL
    CREATE LOGIN hrsync_reader WITH PASSWORD = N'$(HRIS_PASSWORD)', DEFAULT_DATABASE = hris, CHECK_POLICY = ON;
GO
IF USER_ID(N'hrsync_reader') IS NULL CREATE USER hrsync_reader FOR LOGIN hrsync_reader;
GO
GRANT SELECT ON dbo.hrsync_employees TO hrsync_reader;
GO
-- Absences (HRSYNC_HRIS_ABSENCES_QUERY's default reads hrsync_absences; DESIGN §6), with a few demo rows.
IF OBJECT_ID(N'dbo.absences', N'U') IS NULL
CREATE TABLE dbo.absences (
    absence_id   NVARCHAR(64) NOT NULL PRIMARY KEY,
    employee_no  NVARCHAR(16) NOT NULL,
    kind         NVARCHAR(64) NOT NULL,
    date_from    DATE         NOT NULL,
    date_to      DATE         NOT NULL,
    part         NVARCHAR(8)  NOT NULL DEFAULT N'full',
    status       NVARCHAR(16) NOT NULL,
    updated_at   DATETIME2(6) NOT NULL DEFAULT SYSUTCDATETIME()
);
GO
CREATE OR ALTER VIEW dbo.hrsync_absences AS
SELECT absence_id, employee_no, kind, date_from, date_to, part, status, updated_at
FROM dbo.absences;
GO
IF NOT EXISTS (SELECT 1 FROM dbo.absences)
INSERT INTO dbo.absences (absence_id, employee_no, kind, date_from, date_to, part, status)
VALUES
    (N'A0001', N'E0003', N'vacation', CAST(SYSUTCDATETIME() AS DATE), DATEADD(day, 4, CAST(SYSUTCDATETIME() AS DATE)), N'full', N'approved'),
    (N'A0002', N'E0004', N'sick',     DATEADD(day, -1, CAST(SYSUTCDATETIME() AS DATE)), DATEADD(day, -1, CAST(SYSUTCDATETIME() AS DATE)), N'am', N'approved'),
    (N'A0003', N'E0002', N'vacation', DATEADD(day, 7, CAST(SYSUTCDATETIME() AS DATE)), DATEADD(day, 8, CAST(SYSUTCDATETIME() AS DATE)), N'full', N'cancelled');
GO
GRANT SELECT ON dbo.hrsync_absences TO hrsync_reader;
GO
