@echo off
rem fsmount-gc.bat: one featurefs garbage collection run with the standalone
rem fsmount.exe gc, for Windows Task Scheduler.
rem
rem Schedule it daily at 03:17:
rem   schtasks /Create /TN "featurefs GC" /SC DAILY /ST 03:17 /TR "C:\featurefs\fsmount-gc.bat"
rem
rem Environment (fsmount.exe reads the first three itself):
rem   FEATURE_STORE_PATH                cache root (default: .feature_cache in the user's profile)
rem   FEATURE_STORE_GC_RETENTION_WEEKS  delete entries not read for this many weeks (default 4)
rem   FEATURE_STORE_GC_DRY_RUN          true: report what would be deleted, delete nothing
rem   FSMOUNT                           fsmount.exe (default: next to this script)
rem   FSMOUNT_GC_ARGS                   extra flags, for example --max-size 500G
rem   FSMOUNT_GC_LOG                    append the output to this file
rem                                     (default: featurefs\gc.log in LOCALAPPDATA)
rem
rem The exit code is that of fsmount: 0 clean, 1 integrity issues or errors,
rem 2 usage error. On Windows fsmount.exe runs gc, stats and verify, not mount
rem (there is no FUSE there). Build it on Linux with `make cross`
rem (bin/fsmount.exe, a cgo cross-build with mingw-w64); it is cross-compiled
rem and checked there, not run on Windows by the project's tests.

setlocal EnableExtensions

if not defined FSMOUNT set "FSMOUNT=%~dp0fsmount.exe"
if not exist "%FSMOUNT%" (
  echo fsmount-gc: fsmount.exe not found at %FSMOUNT% ^(set FSMOUNT^) 1>&2
  exit /b 2
)
if not defined FSMOUNT_GC_LOG set "FSMOUNT_GC_LOG=%LOCALAPPDATA%\featurefs\gc.log"
for %%D in ("%FSMOUNT_GC_LOG%") do if not exist "%%~dpD" mkdir "%%~dpD"

>>"%FSMOUNT_GC_LOG%" echo ==== %DATE% %TIME% fsmount gc %FSMOUNT_GC_ARGS%
"%FSMOUNT%" gc %FSMOUNT_GC_ARGS% >>"%FSMOUNT_GC_LOG%" 2>&1
set "RC=%ERRORLEVEL%"
>>"%FSMOUNT_GC_LOG%" echo ==== exit %RC%
if not "%RC%"=="0" echo fsmount-gc: exit %RC%, see %FSMOUNT_GC_LOG% 1>&2

rem %RC% is expanded before endlocal drops it.
endlocal & exit /b %RC%
