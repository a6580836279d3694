; tailnet-agent — Windows installer (Inno Setup 6; also compiles with Inno Setup 7).
;
; Build (from the repository root, after `pyinstaller build.spec --noconfirm --clean`):
;   iscc /DAppVersion=0.1.0 installer\windows\tailnet-agent.iss
; Without /DAppVersion the version is read from agent\__init__.py (__version__ = "X.Y.Z").
; /DDistDir=PATH installs another onedir folder than dist\tailnet-agent.
; Output: dist\tailnet-agent-<version>-windows-x64-setup.exe
;
; Per-user install, no UAC prompt: PrivilegesRequired=lowest puts Setup in "non administrative
; install mode", where {autopf} maps to {userpf} = %LOCALAPPDATA%\Programs (Inno Setup help:
; "Constants", "Non Administrative Install Mode"), and the uninstall entry goes to HKCU.
; The user's own files (%LOCALAPPDATA%\tailnet-agent: topology.toml, history, Logs) are a
; different folder: the uninstaller asks before deleting it.
;
; Facts shared with the code (tests/test_release_files.py checks them against agent/edges/paths.py and
; the autostart module):
;   - AppMutex = agent.edges.paths.APP_ID: the named mutex the running agent holds, so Setup and
;     Uninstall ask the user to quit the agent first;
;   - the HKCU Run value name = agent.edges.paths.APP_NAME, data = the quoted path of the tray exe
;     (agent.edges.paths.GUI_EXECUTABLE + ".exe"), exactly what `tailnet-agent-cli autostart enable` writes.

#define AppName "tailnet-agent"
#define AppIdentifier "io.github.tailnet-agent"
#define GuiExe "tailnet-agent"
#define CliExe "tailnet-agent-cli"
#define RunKey "Software\Microsoft\Windows\CurrentVersion\Run"
#define RunValueName "tailnet-agent"

#define RepoRoot AddBackslash(SourcePath) + "..\.."

#ifndef DistDir
  #define DistDir RepoRoot + "\dist\" + AppName
#endif

#ifndef AppVersion
  ; Read `__version__ = "X.Y.Z"` from agent\__init__.py (the one place the version lives).
  #define VersionLine ""
  #define VersionFile 0
  #sub ReadVersionLine
    #define public CurrentLine FileRead(VersionFile)
    #if Pos("__version__", CurrentLine) == 1
      #define public VersionLine CurrentLine
    #endif
  #endsub
  #for {VersionFile = FileOpen(RepoRoot + "\agent\__init__.py"); \
    VersionFile && !FileEof(VersionFile) && VersionLine == ""; ""} ReadVersionLine
  #if VersionFile
    #expr FileClose(VersionFile)
  #endif
  #if VersionLine == ""
    #error No __version__ line in agent\__init__.py: pass /DAppVersion=X.Y.Z
  #endif
  #define VersionTail Copy(VersionLine, Pos('"', VersionLine) + 1)
  #define AppVersion Copy(VersionTail, 1, Pos('"', VersionTail) - 1)
#endif

[Setup]
; A fixed GUID: Setup finds an earlier installation by it (upgrade in place). Never change it.
AppId={{13BD0BBF-9398-41B2-A906-19DCC1A88E1F}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=tailnet-agent contributors
AppMutex={#AppIdentifier}
PrivilegesRequired=lowest
DefaultDirName={autopf}\{#AppName}
DisableProgramGroupPage=yes
DisableDirPage=auto
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
; Files still in use (the agent quit from the tray but something else holds a DLL) are found
; with Windows Restart Manager. The agent is not restarted by Restart Manager: the finished page
; offers "Launch tailnet-agent" instead, so it never starts twice.
CloseApplications=yes
CloseApplicationsFilter=*.exe,*.dll,*.pyd
RestartApplications=no
SetupIconFile={#RepoRoot}\icons\tailnet-agent.ico
UninstallDisplayIcon={app}\tailnet-agent.ico
UninstallDisplayName={#AppName}
WizardStyle=modern
Compression=lzma2
SolidCompression=yes
OutputDir={#RepoRoot}\dist
OutputBaseFilename={#AppName}-{#AppVersion}-windows-x64-setup

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "autostart"; Description: "Start {#AppName} when I sign in to Windows"; GroupDescription: "Start at login:"

[InstallDelete]
; An upgrade replaces the bundled Python runtime whole: no stale module of an older version
; may stay behind in _internal and be imported.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#DistDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs
Source: "{#RepoRoot}\icons\tailnet-agent.ico"; DestDir: "{app}"; Flags: ignoreversion

[Icons]
; One Start-menu entry: the tray. tailnet-agent-cli is a console program that prints one
; report and exits; a shortcut to it would flash a window and close. docs/release.md says how
; to run it from a terminal.
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#GuiExe}.exe"; WorkingDir: "{app}"; IconFilename: "{app}\tailnet-agent.ico"; Comment: "Watch the Tailscale network from the tray"

[Registry]
; Start at login: the same value `tailnet-agent-cli autostart enable` writes (name and quoted
; path). uninsdeletevalue removes it when the task was chosen; [Code] below also removes a value
; the agent wrote itself.
Root: HKCU; Subkey: "{#RunKey}"; ValueType: string; ValueName: "{#RunValueName}"; ValueData: """{app}\{#GuiExe}.exe"""; Flags: uninsdeletevalue; Tasks: autostart

[Run]
Filename: "{app}\{#GuiExe}.exe"; Description: "Launch {#AppName}"; WorkingDir: "{app}"; Flags: nowait postinstall skipifsilent

[Code]
const
  RunKey = '{#RunKey}';
  RunValueName = '{#RunValueName}';

function UserDataDir(): String;
begin
  { platformdirs with appauthor=False: config, history and Logs share this folder. }
  Result := ExpandConstant('{localappdata}\{#AppName}');
end;

{ The Run value is ours when its path points into this installation's folder; a copy of the
  agent started from elsewhere keeps its own entry. }
procedure RemoveRunValue();
var
  Data: String;
begin
  if RegQueryStringValue(HKCU, RunKey, RunValueName, Data) then
  begin
    if Pos(Lowercase(AddBackslash(ExpandConstant('{app}'))), Lowercase(Data)) > 0 then
    begin
      if RegDeleteValue(HKCU, RunKey, RunValueName) then
        Log('Removed the start-at-login value ' + RunValueName)
      else
        Log('Could not remove the start-at-login value ' + RunValueName);
    end
    else
      Log('Kept the start-at-login value ' + RunValueName + ': it points elsewhere: ' + Data);
  end;
end;

{ Ask before deleting the user's topology, history and logs; a silent uninstall keeps them. }
procedure AskToRemoveUserData();
var
  Dir: String;
begin
  Dir := UserDataDir();
  if not DirExists(Dir) then
    Exit;
  if UninstallSilent() then
  begin
    Log('Silent uninstall: kept ' + Dir);
    Exit;
  end;
  if MsgBox('Also delete your {#AppName} settings, topology file, history and logs?' + #13#10#13#10
      + Dir + #13#10#13#10
      + 'Choose No to keep them for a later installation.',
      mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES then
  begin
    if not DelTree(Dir, True, True, True) then
      MsgBox('Could not delete ' + Dir + '. Delete it by hand.', mbError, MB_OK);
  end
  else
    Log('Kept ' + Dir);
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if CurUninstallStep = usUninstall then
    RemoveRunValue()
  else if CurUninstallStep = usPostUninstall then
    AskToRemoveUserData();
end;
