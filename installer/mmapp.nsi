; mmapp's Windows installer. Built by installer/build.py, which passes
;   VERSION (from pyproject.toml), VERSION4 (a.b.c.d), BUNDLE (the folder to
;   install), OUTFILE (mmapp-<version>-setup.exe), COMPRESSOR (lzma|zlib|bzip2).
; Per-user by default (no admin): %LOCALAPPDATA%\Programs\mmapp, HKCU only.
; Silent: setup.exe /S [/D=C:\path]   uninstall.exe /S

Unicode true
Target amd64-unicode  ; a 64-bit setup.exe and uninstaller
SetCompressor /SOLID ${COMPRESSOR}
!include "MUI2.nsh"
!include "x64.nsh"
!include "LogicLib.nsh"
!include "FileFunc.nsh"

!define APP "mmapp"
!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\mmapp"
!define PROGID "mmapp.preset"

Name "${APP} ${VERSION}"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\Programs\${APP}"
InstallDirRegKey HKCU "Software\${APP}\Installer" "InstallDir"
RequestExecutionLevel user
ManifestDPIAware true
BrandingText "${APP} ${VERSION}"

VIProductVersion "${VERSION4}"
VIAddVersionKey "ProductName" "${APP}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${APP} ${VERSION} setup"
VIAddVersionKey "LegalCopyright" "BSD-3-Clause"

!define MUI_ICON "${BUNDLE}/mmapp.ico"
!define MUI_UNICON "${BUNDLE}/mmapp.ico"
!define MUI_ABORTWARNING
!define MUI_FINISHPAGE_RUN
!define MUI_FINISHPAGE_RUN_FUNCTION StartApp
!define MUI_FINISHPAGE_RUN_TEXT "Start mmapp (simulated rig)"

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Function .onInit
  ${IfNot} ${RunningX64}
    MessageBox MB_ICONSTOP "mmapp needs 64-bit Windows." /SD IDOK
    Abort
  ${EndIf}
  SetRegView 64
  SetShellVarContext current
  ; The system's Visual C++ 2015-2022 runtime is what device adapters of a
  ; current Micro-Manager need (PyQt6's older copy is only a fallback).
  ReadRegDWORD $0 HKLM "SOFTWARE\Microsoft\VisualStudio\14.0\VC\Runtimes\x64" "Installed"
  ${If} $0 != 1
    MessageBox MB_ICONINFORMATION "The Microsoft Visual C++ 2015-2022 Redistributable (x64) is not installed.$\r$\nmmapp runs on the simulated rig without it; Micro-Manager device adapters need it (Micro-Manager's own installer brings it)." /SD IDOK
  ${EndIf}
FunctionEnd

Function StartApp
  Exec '"$INSTDIR\python\pythonw.exe" "$INSTDIR\launcher.py"'
FunctionEnd

Function un.onInit
  SetRegView 64
  SetShellVarContext current
FunctionEnd

Section "mmapp (required)" SecMain
  SectionIn RO
  SetOutPath "$INSTDIR"
  ; an earlier version's files go first (the uninstaller keeps user data)
  RMDir /r "$INSTDIR\python"
  RMDir /r "$INSTDIR\site-packages"
  RMDir /r "$INSTDIR\vcruntime-fallback"
  File /r "${BUNDLE}/*.*"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  WriteRegStr HKCU "Software\${APP}\Installer" "InstallDir" "$INSTDIR"
  WriteRegStr HKCU "Software\${APP}\Installer" "Version" "${VERSION}"

  CreateDirectory "$SMPROGRAMS\${APP}"
  CreateShortcut "$SMPROGRAMS\${APP}\${APP}.lnk" "$INSTDIR\python\pythonw.exe" '"$INSTDIR\launcher.py"' "$INSTDIR\mmapp.ico" 0 SW_SHOWNORMAL "" "mmapp: acquisition on the rig"
  CreateShortcut "$SMPROGRAMS\${APP}\Uninstall ${APP}.lnk" "$INSTDIR\uninstall.exe"

  ; Apps & Features (per user)
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayName" "${APP} ${VERSION}"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINST_KEY}" "Publisher" "mmapp"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayIcon" "$INSTDIR\mmapp.ico"
  WriteRegStr HKCU "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINST_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINST_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  IntFmt $0 "0x%08X" $0
  WriteRegDWORD HKCU "${UNINST_KEY}" "EstimatedSize" "$0"
SectionEnd

Section /o "Desktop shortcut" SecDesktop
  CreateShortcut "$DESKTOP\${APP}.lnk" "$INSTDIR\python\pythonw.exe" '"$INSTDIR\launcher.py"' "$INSTDIR\mmapp.ico" 0 SW_SHOWNORMAL "" "mmapp: acquisition on the rig"
SectionEnd

Section "Open .mmpreset files with mmapp" SecAssoc
  WriteRegStr HKCU "Software\Classes\.mmpreset" "" "${PROGID}"
  WriteRegStr HKCU "Software\Classes\${PROGID}" "" "mmapp experiment preset"
  WriteRegStr HKCU "Software\Classes\${PROGID}\DefaultIcon" "" "$INSTDIR\mmapp.ico"
  WriteRegStr HKCU "Software\Classes\${PROGID}\shell\open\command" "" '"$INSTDIR\python\pythonw.exe" "$INSTDIR\launcher.py" --preset "%1"'
  System::Call 'shell32::SHChangeNotify(i 0x08000000, i 0, p 0, p 0)'
SectionEnd

!insertmacro MUI_FUNCTION_DESCRIPTION_BEGIN
  !insertmacro MUI_DESCRIPTION_TEXT ${SecMain} "mmapp, its own Python 3.12 and every package it needs (no network needed)."
  !insertmacro MUI_DESCRIPTION_TEXT ${SecDesktop} "A shortcut on the desktop."
  !insertmacro MUI_DESCRIPTION_TEXT ${SecAssoc} "Double-clicking a .mmpreset file opens it in mmapp."
!insertmacro MUI_FUNCTION_DESCRIPTION_END

Section "Uninstall"
  ; Only what the installer put there: never RMDir /r $INSTDIR itself (the
  ; user may have chosen a folder that holds other files).
  RMDir /r "$INSTDIR\python"
  RMDir /r "$INSTDIR\site-packages"
  RMDir /r "$INSTDIR\vcruntime-fallback"
  Delete "$INSTDIR\launcher.py"
  Delete "$INSTDIR\mmapp.cmd"
  Delete "$INSTDIR\mmapp.ico"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"

  Delete "$SMPROGRAMS\${APP}\${APP}.lnk"
  Delete "$SMPROGRAMS\${APP}\Uninstall ${APP}.lnk"
  RMDir "$SMPROGRAMS\${APP}"
  Delete "$DESKTOP\${APP}.lnk"

  ReadRegStr $0 HKCU "Software\Classes\.mmpreset" ""
  ${If} $0 == "${PROGID}"
    DeleteRegKey HKCU "Software\Classes\.mmpreset"
  ${EndIf}
  DeleteRegKey HKCU "Software\Classes\${PROGID}"
  System::Call 'shell32::SHChangeNotify(i 0x08000000, i 0, p 0, p 0)'

  DeleteRegKey HKCU "${UNINST_KEY}"
  DeleteRegKey HKCU "Software\${APP}\Installer"
  DeleteRegKey /ifempty HKCU "Software\${APP}"
  ; the launcher's numba cache and log (settings and datasets stay)
  RMDir /r "$LOCALAPPDATA\${APP}\numba-cache"
  Delete "$LOCALAPPDATA\${APP}\launcher.log"
  RMDir "$LOCALAPPDATA\${APP}"
SectionEnd
